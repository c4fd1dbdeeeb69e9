"""World models and campaign curves: the campaign's auxiliary MLflow runs."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import ViewType

from sciwm.store.base import KIND_TAG, StoreBase
from sciwm.store.connection import log_batched
from sciwm.store.record import metric_key

if TYPE_CHECKING:
    from sciwm.world_model import WorldModel


class ModelLog(StoreBase):
    """Fitted world models and campaign-level curves on a campaign's auxiliary runs.

    World models are artifacts of the campaign's ``world-model`` run, curves are metrics of its
    ``campaign`` summary run; each run is created on first use, one of each kind per campaign.
    Its arguments are those of :class:`~sciwm.store.record_store.RecordStore`.
    """

    def __init__(self, tracking_uri: str | None = None, artifact_root: Path | None = None) -> None:
        super().__init__(tracking_uri, artifact_root)
        self._aux_runs: dict[tuple[str, str], str] = {}

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

    def log_stop_reason(self, campaign: str, reason: str) -> None:
        """Record why the campaign stopped (tag ``sciwm.stop_reason`` of its summary run)."""
        run_id = self._aux_run(campaign, "summary", "campaign")
        with self._guard(f"recording why campaign {campaign!r} stopped"):
            log_batched(self._client, run_id, tags={"sciwm.stop_reason": reason[:5000]})

    def stop_reason(self, campaign: str) -> str | None:
        """Why the campaign last stopped, or ``None`` if it has not stopped yet."""
        run_id = self._aux_run(campaign, "summary", "campaign", create=False)
        if run_id is None:
            return None
        with self._guard(f"reading why campaign {campaign!r} stopped"):
            return self._client.get_run(run_id).data.tags.get("sciwm.stop_reason")

    def _aux_run(self, campaign: str, kind: str, run_name: str, create: bool = True) -> str | None:
        """The campaign's one run of ``kind`` (world model or summary), created on demand."""
        key = (campaign, kind)
        if key not in self._aux_runs:
            exp_id = self._campaign_id(campaign)
            with self._guard(f"finding the {run_name} run of campaign {campaign!r}"):
                runs = self._client.search_runs(
                    [exp_id],
                    f"tags.`{KIND_TAG}` = '{kind}'",
                    run_view_type=ViewType.ALL,
                    max_results=1,
                    order_by=["attributes.start_time ASC"],
                )
                if runs:
                    self._aux_runs[key] = runs[0].info.run_id
                elif not create:
                    return None
                else:
                    run = self._client.create_run(exp_id, tags={KIND_TAG: kind}, run_name=run_name)
                    self._aux_runs[key] = run.info.run_id
        return self._aux_runs[key]
