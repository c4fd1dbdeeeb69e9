"""The :class:`RecordStore`: campaigns, experiments and world models on MLflow."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from sciwm.errors import SciwmError, SpecError, StoreError
from sciwm.experiment import Experiment, Observation, Status, canonical_json
from sciwm.prediction import Prediction
from sciwm.store.connection import (
    HINT,
    connect,
    default_tracking_uri,
    log_batched,
    short_reason,
    sqlite_artifact_root,
)
from sciwm.store.record import (
    ERROR_TAG_MAX,
    Record,
    artifact_files,
    capped,
    chunked,
    metric_key,
    outcome_key,
    params_of,
    prediction_metrics,
    preferred_run,
    record_from_run,
    unchunked,
)

if TYPE_CHECKING:
    from sciwm.spec import CampaignSpec
    from sciwm.world_model import WorldModel

#: Runs fetched per ``search_runs`` request when reading a campaign back.
PAGE_SIZE = 1000
_KIND = "sciwm.kind"
_FINISHED_MLFLOW = {
    Status.COMPLETED: "FINISHED",
    Status.FAILED: "FAILED",
    Status.CANCELLED: "KILLED",
}


class RecordStore:
    """Campaigns, experiments and world models on an MLflow tracking store.

    Several stores may coexist in one process: each talks through its own ``MlflowClient``
    and never touches MLflow's global (fluent) state.

    Args:
        tracking_uri: Any MLflow tracking URI (default: :func:`default_tracking_uri`).
        artifact_root: Directory for artifacts of new campaigns (default: ``mlruns/`` next to
            a SQLite file; the server's default otherwise).

    Raises:
        StoreError: If the store cannot be reached.
    """

    def __init__(self, tracking_uri: str | None = None, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self._artifact_root = artifact_root or sqlite_artifact_root(self.tracking_uri)
        self._campaign_ids: dict[str, str] = {}
        self._aux_runs: dict[tuple[str, str], str] = {}
        self._client = connect(self.tracking_uri)

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
                tags = {_KIND: "campaign", **chunked("sciwm.spec", spec_text)}
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
            if exp.tags.get(_KIND) != "campaign":
                raise StoreError(
                    f"an MLflow experiment named {name!r} already exists in {self.tracking_uri} "
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
                    f"campaign {name!r} already exists in {self.tracking_uri} with a different "
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
            if exp is None or exp.tags.get(_KIND) != "campaign":
                raise self._unknown(name)
            return self._parse_spec(name, unchunked(exp.tags, "sciwm.spec"))

    def campaigns(self) -> list[str]:
        """Names of the campaigns in the store, sorted."""
        names: list[str] = []
        token = None
        with self._guard("listing campaigns"):
            while True:
                page = self._client.search_experiments(
                    max_results=1000, filter_string=f"tags.`{_KIND}` = 'campaign'", page_token=token
                )
                names.extend(e.name for e in page)
                token = page.token
                if not token:
                    return sorted(names)

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
                _KIND: "experiment",
                "sciwm.experiment_id": experiment.id,
                "sciwm.seq": str(experiment.seq),
                "sciwm.status": Status.PROPOSED.value,
                **chunked("sciwm.experiment", canonical_json(experiment.to_dict())),
            }
            if prediction is not None:
                tags.update(chunked("sciwm.prediction", json.dumps(prediction.to_dict())))
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
                    f"tags.`{_KIND}` = 'experiment'",
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

    # -- world models and campaign curves -----------------------------------------------
    def log_world_model(self, campaign: str, model: WorldModel, step: int) -> str:
        """Log a fitted world model as artifacts ``world_model/<step>`` of the campaign.

        Returns:
            The artifact path, e.g. ``"world_model/0003"``.
        """
        path = f"world_model/{step:04d}"
        run_id = self._aux_run(campaign, "world_model", "world-model")
        with tempfile.TemporaryDirectory(prefix="sciwm-wm-") as tmp:
            model.save(tmp)
            with self._guard(f"logging the world model of campaign {campaign!r}"):
                self._client.log_artifacts(run_id, tmp, path)
                tags = {"sciwm.latest_step": str(step), "sciwm.latest_path": path}
                log_batched(self._client, run_id, tags=tags)
                self._client.set_terminated(run_id, "FINISHED")
        return path

    def load_world_model(self, campaign: str) -> WorldModel | None:
        """The latest world model logged for a campaign, or ``None`` if there is none."""
        from sciwm.world_model import WorldModel

        run_id = self._aux_run(campaign, "world_model", "world-model", create=False)
        if run_id is None:
            return None
        with self._guard(f"loading the world model of campaign {campaign!r}"):
            path = self._client.get_run(run_id).data.tags.get("sciwm.latest_path")
            if path is None:
                return None
            with tempfile.TemporaryDirectory(prefix="sciwm-wm-") as tmp:
                local = self._client.download_artifacts(run_id, path, tmp)
                return WorldModel.load(local)

    def log_campaign_metrics(self, campaign: str, step: int, metrics: Mapping[str, float]) -> None:
        """Log campaign-level curves (best so far, spent, ...) at ``step`` on its summary run."""
        run_id = self._aux_run(campaign, "summary", "campaign")
        with self._guard(f"logging metrics of campaign {campaign!r}"):
            log_batched(
                self._client,
                run_id,
                metrics={metric_key(k): v for k, v in metrics.items()},
                step=step,
            )

    # -- internals ----------------------------------------------------------------------
    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn any failure of MLflow into one clear :class:`StoreError`."""
        try:
            yield
        except SciwmError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised as a project error
            raise StoreError(
                f"the MLflow tracking store at {self.tracking_uri} failed while {action}: "
                f"{short_reason(exc)}. Everything recorded before is kept; once the store is "
                f"reachable again, run the campaign again to resume it. {HINT}."
            ) from exc

    def _campaign_id(self, name: str) -> str:
        if name not in self._campaign_ids:
            with self._guard(f"finding campaign {name!r}"):
                exp = self._client.get_experiment_by_name(name)
            if exp is None or exp.tags.get(_KIND) != "campaign":
                raise self._unknown(name)
            self._campaign_ids[name] = exp.experiment_id
        return self._campaign_ids[name]

    def _unknown(self, name: str) -> StoreError:
        known = self.campaigns()
        return StoreError(
            f"no campaign named {name!r} in the MLflow tracking store at {self.tracking_uri}; "
            f"known campaigns: {known or 'none'}. Start it with `sciwm campaign run FILE.toml`, "
            "or point MLFLOW_TRACKING_URI / [store] tracking_uri at the store that holds it"
        )

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

    def _aux_run(self, campaign: str, kind: str, run_name: str, create: bool = True) -> str | None:
        """The campaign's one run of ``kind`` (world model or summary), created on demand."""
        key = (campaign, kind)
        if key not in self._aux_runs:
            exp_id = self._campaign_id(campaign)
            with self._guard(f"finding the {run_name} run of campaign {campaign!r}"):
                runs = self._client.search_runs(
                    [exp_id],
                    f"tags.`{_KIND}` = '{kind}'",
                    run_view_type=ViewType.ALL,
                    max_results=1,
                    order_by=["attributes.start_time ASC"],
                )
                if runs:
                    self._aux_runs[key] = runs[0].info.run_id
                elif not create:
                    return None
                else:
                    run = self._client.create_run(exp_id, tags={_KIND: kind}, run_name=run_name)
                    self._aux_runs[key] = run.info.run_id
        return self._aux_runs[key]
