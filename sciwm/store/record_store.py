"""The :class:`RecordStore`: campaigns, experiments and world models on MLflow.

This module holds campaigns and experiments; :mod:`~sciwm.store.model_log` holds world
models and campaign curves, :mod:`~sciwm.store.base` the connection both share.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from sciwm.errors import SpecError, StoreError
from sciwm.experiment import Experiment, Observation, Status, canonical_json
from sciwm.prediction import Prediction
from sciwm.store.base import KIND_TAG
from sciwm.store.connection import log_batched
from sciwm.store.model_log import ModelLog
from sciwm.store.record import (
    ERROR_TAG_MAX,
    Record,
    artifact_files,
    capped,
    chunked,
    outcome_key,
    params_of,
    prediction_metrics,
    preferred_run,
    record_from_run,
    unchunked,
)
from sciwm.store.virtual_log import VirtualLog

if TYPE_CHECKING:
    from sciwm.spec import CampaignSpec

#: Runs fetched per ``search_runs`` request when reading a campaign back.
PAGE_SIZE = 1000
_FINISHED_MLFLOW = {
    Status.COMPLETED: "FINISHED",
    Status.FAILED: "FAILED",
    Status.CANCELLED: "KILLED",
}


class RecordStore(ModelLog, VirtualLog):
    """Campaigns, experiments and world models on an MLflow tracking store.

    Several stores may coexist in one process: each talks through its own ``MlflowClient``
    and never touches MLflow's global (fluent) state. Campaigns and experiments are here;
    world models and campaign curves are in :class:`~sciwm.store.model_log.ModelLog`.

    Args:
        tracking_uri: Any MLflow tracking URI (default: :func:`default_tracking_uri`).
        artifact_root: Directory for artifacts of new campaigns (default: ``mlruns/`` next to
            a SQLite file; the server's default otherwise).

    Raises:
        StoreError: If the store cannot be reached.
    """

    # -- campaigns ----------------------------------------------------------------------
    def open_campaign(self, spec: CampaignSpec, spec_text: str) -> str:
        """Create the campaign's MLflow experiment, or check and reopen an existing one.

        Args:
            spec: The validated campaign.
            spec_text: Its TOML text, stored so that the campaign can be read back.

        Returns:
            The MLflow experiment id.

        Raises:
            StoreError: If a campaign of that name exists with another search space, objective
                or outcomes, or the name belongs to an MLflow experiment sciwm did not create.
        """
        name = spec.name
        with self._guard(f"opening campaign {name!r}"):
            exp = self._client.get_experiment_by_name(name)
            if exp is None:
                tags = {KIND_TAG: "campaign", **chunked("sciwm.spec", spec_text)}
                location = None
                if self._artifact_root is not None:
                    location = (self._artifact_root / name).resolve().as_uri()
                try:
                    exp_id = self._client.create_experiment(name, location, tags)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    exp = self._client.get_experiment_by_name(name)  # created concurrently
                else:
                    self._campaign_ids[name] = exp_id
                    return exp_id
            assert exp is not None
            if exp.tags.get(KIND_TAG) != "campaign":
                raise StoreError(
                    f"an MLflow experiment named {name!r} already exists in {self.display_uri} "
                    "but was not created by sciwm; choose another [campaign] name"
                )
            if exp.lifecycle_stage == "deleted":
                self._client.restore_experiment(exp.experiment_id)
            stored = self._parse_spec(name, unchunked(exp.tags, "sciwm.spec"))
            changed = [
                what
                for what, old, new in (
                    ("search space ([[parameters]])", stored.parameters, spec.parameters),
                    ("objective ([[objectives]])", stored.objectives, spec.objectives),
                    ("outcomes", stored.outcomes, spec.outcomes),
                )
                if old != new
            ]
            if changed:
                raise StoreError(
                    f"campaign {name!r} already exists in {self.display_uri} with a different "
                    f"{' and '.join(changed)}; its recorded experiments would not fit the new "
                    "campaign. Give the new campaign another [campaign] name, or restore the "
                    "original definition to resume it (budget, stopping, scheduler, connector and "
                    "world-model settings may change between runs)."
                )
            if unchunked(exp.tags, "sciwm.spec") != spec_text:
                tags = chunked("sciwm.spec", spec_text, reset=True)
                for key, value in tags.items():
                    self._client.set_experiment_tag(exp.experiment_id, key, value)
            self._campaign_ids[name] = exp.experiment_id
            return exp.experiment_id

    def campaign_spec(self, name: str) -> CampaignSpec:
        """The campaign as last opened.

        Raises:
            StoreError: If there is no such campaign (the message lists the known ones).
        """
        with self._guard(f"reading campaign {name!r}"):
            exp = self._client.get_experiment_by_name(name)
            if exp is None or exp.tags.get(KIND_TAG) != "campaign":
                raise self._unknown(name)
            return self._parse_spec(name, unchunked(exp.tags, "sciwm.spec"))

    # -- experiments --------------------------------------------------------------------
    def record_proposal(self, experiment: Experiment, prediction: Prediction | None) -> Record:
        """Record an experiment before it is dispatched; idempotent by ``experiment.id``.

        Returns:
            The new record, or the existing one when the id was recorded before.
        """
        exp_id = self._campaign_id(experiment.campaign)
        with self._guard(f"recording experiment {experiment.id}"):
            runs = self._client.search_runs(
                [exp_id],
                f"tags.`sciwm.experiment_id` = '{experiment.id}'",
                run_view_type=ViewType.ALL,
                max_results=50,
            )
            if runs:
                run = preferred_run(list(runs))
                if not run.data.params and experiment.parameters:  # crashed before params
                    log_batched(self._client, run.info.run_id, params=params_of(experiment))
                return record_from_run(run)
            tags = {
                KIND_TAG: "experiment",
                "sciwm.experiment_id": experiment.id,
                "sciwm.seq": str(experiment.seq),
                "sciwm.status": Status.PROPOSED.value,
                **chunked("sciwm.experiment", canonical_json(experiment.to_dict())),
            }
            if prediction is not None:
                tags.update(chunked("sciwm.prediction", json.dumps(prediction.to_dict())))
                if prediction.extrapolating:  # searchable: tags.`sciwm.extrapolating` != ''
                    why = prediction.extrapolating_reason or "outside the training conditions"
                    tags["sciwm.extrapolating"] = why[:500]
            run = self._client.create_run(exp_id, tags=tags, run_name=experiment.id)
            run_id = run.info.run_id
            log_batched(
                self._client,
                run_id,
                params=params_of(experiment),
                metrics=prediction_metrics(prediction),
            )
        return Record(experiment, Status.PROPOSED, run_id, prediction=prediction)

    def record_submitted(self, record: Record, handle: dict) -> Record:
        """Record the connector handle of a submitted experiment (status ``RUNNING``)."""
        if record.status.finished:
            return record
        with self._guard(f"recording the submission of {record.experiment.id}"):
            tags = chunked("sciwm.handle", canonical_json(handle), reset=True)
            tags["sciwm.status"] = Status.RUNNING.value
            log_batched(self._client, record.run_id, tags=tags)
        return replace(record, status=Status.RUNNING, handle=dict(handle))

    def record_observation(self, record: Record, observation: Observation) -> Record:
        """Record the result of a finished experiment and close its MLflow run.

        Recording the same observation twice writes nothing the second time.
        """
        status = observation.status
        if not status.finished:
            raise StoreError(
                f"experiment {record.experiment.id}: an observation must be completed, failed or "
                f"cancelled, got {status.value!r}"
            )
        if observation.experiment_id != record.experiment.id:
            raise StoreError(
                f"observation of experiment {observation.experiment_id} cannot be recorded on the "
                f"record of experiment {record.experiment.id}"
            )
        with self._guard(f"recording the result of {record.experiment.id}"):
            run = self._client.get_run(record.run_id)
            obs_json = json.dumps(capped(observation).to_dict(), sort_keys=True)
            recorded = run.data.tags.get("sciwm.status") == status.value and obs_json == unchunked(
                run.data.tags, "sciwm.observation"
            )
            if recorded and run.info.status == _FINISHED_MLFLOW[status]:
                return replace(record, status=status, observation=observation)
            if run.info.lifecycle_stage == "deleted":
                self._client.restore_run(record.run_id)
            metrics = {outcome_key(k): v for k, v in observation.outcomes.items()}
            if observation.cost is not None:
                metrics["cost"] = observation.cost
            tags = chunked("sciwm.observation", obs_json, reset=True)
            tags["sciwm.status"] = status.value
            error = observation.error
            if error and not recorded:
                if len(error) > ERROR_TAG_MAX:
                    self._client.log_text(record.run_id, error, "error.txt")
                    error = error[:ERROR_TAG_MAX] + " ... (truncated; full text in error.txt)"
                tags["sciwm.error"] = error
            if not recorded:  # else only the run's end is missing (a crash in between)
                files, missing = artifact_files(observation)
                for path in files:
                    self._client.log_artifact(record.run_id, str(path), "outputs")
                if missing:
                    tags["sciwm.missing_artifacts"] = ", ".join(missing)[:ERROR_TAG_MAX]
                log_batched(self._client, record.run_id, metrics=metrics, tags=tags)
            end = observation.finished_at
            self._client.set_terminated(
                record.run_id, _FINISHED_MLFLOW[status], None if end is None else int(end * 1000)
            )
        return replace(record, status=status, observation=observation)

    def records(self, campaign: str) -> list[Record]:
        """Every experiment of a campaign, rebuilt from the store, sorted by sequence number."""
        exp_id = self._campaign_id(campaign)
        by_id: dict[str, list[Any]] = {}
        token = None
        with self._guard(f"reading the experiments of campaign {campaign!r}"):
            while True:
                page = self._client.search_runs(
                    [exp_id],
                    f"tags.`{KIND_TAG}` = 'experiment'",
                    run_view_type=ViewType.ALL,
                    max_results=PAGE_SIZE,
                    page_token=token,
                )
                for run in page:
                    by_id.setdefault(run.data.tags.get("sciwm.experiment_id", ""), []).append(run)
                token = page.token
                if not token:
                    break
        records = [record_from_run(preferred_run(runs)) for runs in by_id.values()]
        return sorted(records, key=lambda r: (r.experiment.seq, r.experiment.id))

    # -- internals ----------------------------------------------------------------------
    def _parse_spec(self, name: str, text: str) -> CampaignSpec:
        import tomllib

        from sciwm.spec import parse_spec

        try:
            # checked when the campaign started; reading it back needs no world model installed
            return parse_spec(
                tomllib.loads(text), f"stored with campaign {name!r}", check_world_model=False
            )
        except (tomllib.TOMLDecodeError, SpecError) as exc:
            raise StoreError(
                f"the stored definition of campaign {name!r} cannot be read back: {exc}"
            ) from exc
