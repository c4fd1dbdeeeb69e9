"""Retraining a campaign's world model on its real results, as a Prefect task.

:func:`retrain_world_model` is a plain function (testable without Prefect): it reads the
campaign's spec and finished experiments from the MLflow record store, builds the world model
the campaign file names, fits it on every finished experiment, logs it as the campaign's latest
world model, and returns what it was trained on. :data:`retrain_task` wraps it as a Prefect
task; :func:`retrain_flow` runs it as a one-task flow (e.g. on a schedule while a campaign
runs elsewhere).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from sciwm.errors import WorldModelError
from sciwm.registry import build_world_model
from sciwm.store import RecordStore

#: Artifact steps of retrains start here, apart from the campaign loop's own fit counter.
RETRAIN_STEP_BASE = 100_000


def retrain_world_model(
    campaign: str, tracking_uri: str | None = None, log: bool = True
) -> dict[str, Any]:
    """Fit the campaign's world model on all its finished experiments and log it.

    Args:
        campaign: Campaign name in the record store.
        tracking_uri: MLflow tracking URI (default: the store's default).
        log: Log the fitted model to the store as the campaign's latest world model.

    Returns:
        The model's training summary (``TrainingSummary.to_dict()``) plus ``artifact``, the
        artifact path it was logged under (``None`` when ``log`` is false).

    Raises:
        StoreError: If the campaign is not in the store.
        WorldModelError: If there are no finished experiments, or too few for the world model
            to fit (it says, through ``can_fit``).
    """
    store = RecordStore(tracking_uri)
    spec = store.campaign_spec(campaign)
    finished = [r for r in store.records(campaign) if r.observation is not None]
    if not finished:
        raise WorldModelError(
            f"campaign {campaign!r} has no finished experiments yet; nothing to retrain on"
        )
    model = build_world_model(spec.world_model, spec.space(), spec.outcome_names)
    experiments = [r.experiment for r in finished]
    observations = [r.observation.checked(spec.outcome_names) for r in finished]  # type: ignore[union-attr]
    if not model.can_fit(experiments, observations):
        raise WorldModelError(
            f"the {spec.world_model.type!r} world model of campaign {campaign!r} cannot be fitted "
            f"on its {len(finished)} finished experiments yet; retrain once more have completed"
        )
    model.fit(experiments, observations)
    artifact = None
    if log:
        artifact = store.log_world_model(campaign, model, RETRAIN_STEP_BASE + len(finished))
    assert model.summary is not None
    return {**model.summary.to_dict(), "artifact": artifact}


retrain_task = task(name="retrain-world-model", cache_policy=NO_CACHE)(retrain_world_model)


@flow(name="sciwm-retrain", log_prints=False)
def retrain_flow(campaign: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Retrain and log a campaign's world model (one task run)."""
    return retrain_task(campaign, tracking_uri)
