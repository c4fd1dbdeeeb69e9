"""sciwm: learned world models between an experiment-proposing agent and real labs.

The public API is re-exported here and loaded on first use, so that light modules
(``sciwm.experiment``, the connector worker) do not pay for torch's import.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SciwmError": "sciwm.errors",
    "SpecError": "sciwm.errors",
    "ParameterError": "sciwm.errors",
    "ConnectorError": "sciwm.errors",
    "StoreError": "sciwm.errors",
    "WorldModelError": "sciwm.errors",
    "BudgetError": "sciwm.errors",
    "Experiment": "sciwm.experiment",
    "Observation": "sciwm.experiment",
    "Status": "sciwm.experiment",
    "Estimate": "sciwm.prediction",
    "Prediction": "sciwm.prediction",
    "Parameter": "sciwm.space",
    "SearchSpace": "sciwm.space",
    "CampaignSpec": "sciwm.spec",
    "load_spec": "sciwm.spec",
    "parse_spec": "sciwm.spec",
    "WorldModel": "sciwm.world_model",
    "Connector": "sciwm.connector",
    "RecordStore": "sciwm.store",
    "run_campaign": "flows.campaign",
    "open_campaign": "sciwm.api",
    "Campaign": "sciwm.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sciwm' has no attribute {name!r}")
