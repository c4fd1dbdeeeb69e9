"""The record store: MLflow is the system of record of every campaign.

A campaign is an MLflow experiment (tagged ``sciwm.kind = campaign``, its TOML in
``sciwm.spec``); every real experiment is an MLflow run (tagged ``sciwm.kind = experiment``)
whose tags hold everything needed to resume: the experiment, the prediction made before
dispatch, the connector handle, the status and the observation. Parameters, outcomes, cost
and predicted mean/std/interval are also logged as MLflow params and metrics for
``mlflow ui``. World models are artifacts of a ``world-model`` run; campaign curves live on a
``campaign`` summary run. A proposal answered by the world model instead of a real run is
a run tagged ``sciwm.kind = virtual`` and ``sciwm.virtual = true``
(:mod:`~sciwm.store.virtual_log`), never read back as an experiment. Runs are never deleted.

Modules: :mod:`~sciwm.store.connection` (URIs, reachability, error texts),
:mod:`~sciwm.store.record` (a record and its tags), :mod:`~sciwm.store.base` (the client,
error guard and campaign lookups), :mod:`~sciwm.store.model_log` (world models and campaign
curves), :mod:`~sciwm.store.record_store` (the store: campaigns and experiments).
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A client of a tracking server prints two "View run ... at" lines for every run it ends;
# a campaign ends one per experiment, which would bury the campaign's own output.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from sciwm.store.connection import default_tracking_uri  # noqa: E402
from sciwm.store.record import Record  # noqa: E402
from sciwm.store.record_store import RecordStore  # noqa: E402

__all__ = ["Record", "RecordStore", "default_tracking_uri"]
