"""The campaign loop's early stopping: running experiments that cannot matter are cancelled.

:func:`stop_early` asks :func:`scheduler.early_stop.judge_running` about every running
experiment with partial results and cancels, through the connector, those that cannot beat
the best real result; :func:`annotate` adds the reason, the predicted cost saved and the
partial curve to the cancelled run's observation when it comes back. The partial curve stays
data: :func:`partial_points` turns it into results at the fidelities reached, which the world
model learns from (they are never a best value: the run's record stays ``cancelled``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from scheduler.early_stop import judge_running
from sciwm.errors import SciwmError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.summary import EARLY_STOP_KEY

if TYPE_CHECKING:
    from flows.loop import CampaignLoop
    from sciwm.space import SearchSpace
    from sciwm.store import Record

log = logging.getLogger("sciwm.campaign")


def stop_early(loop: CampaignLoop) -> list[str]:
    """Cancel the running experiments whose partial results show they cannot matter.

    Returns:
        Ids of the experiments cancelled now.
    """
    spec, state = loop.spec, loop.state
    if not spec.scheduler.early_stop or spec.multi_objective or not loop.model.is_fitted:
        return []
    values = loop.objective_values()
    if not values or not state.running or not loop.space.fidelity_indices:
        return []
    best = max(values) if spec.maximize else min(values)
    cancelled = []
    for exp_id, rec in list(state.running.items()):
        if exp_id in state.stopped_early or rec.handle is None:
            continue
        try:
            partial = loop.connector.partial(rec.handle)
        except SciwmError as exc:
            log.warning("partial results of %s not read: %s", exp_id, exc)
            continue
        if not partial:
            continue
        verdict = judge_running(
            loop.model,
            loop.space,
            spec.objective.name,
            spec.maximize,
            rec.experiment.parameters,
            partial,
            best,
        )
        if verdict is None or not verdict.stop:
            continue
        if not loop.connector.can_cancel:
            state.stopped_early[exp_id] = {"waiting": True}
            log.info(
                "%s would be stopped early (%s), but the %s connector cannot cancel: it runs "
                "to its end",
                exp_id,
                verdict.reason,
                loop.connector.name,
            )
            continue
        loop._call(loop.connector.cancel, rec.handle)
        state.stopped_early[exp_id] = {
            "reason": verdict.reason,
            "saved_cost": verdict.saved_cost,
            "partial": list(partial),
        }
        cancelled.append(exp_id)
        log.info("%s %s", exp_id, verdict.reason)
    return cancelled


def annotate(loop: CampaignLoop, exp_id: str, obs: Observation) -> Observation:
    """The observation of an experiment stopped early, with why, what it saved, its curve."""
    stop = loop.state.stopped_early.get(exp_id)
    if stop is None or "reason" not in stop or obs.status is not Status.CANCELLED:
        return obs
    return replace(obs, error=stop["reason"], metadata={**obs.metadata, EARLY_STOP_KEY: stop})


def partial_points(record: Record, space: SearchSpace) -> list[tuple[Experiment, Observation]]:
    """A run stopped early as results at the fidelities its partial curve reached (those
    inside the space)."""
    obs = record.observation
    if obs is None or EARLY_STOP_KEY not in obs.metadata:
        return []
    out = []
    exp = record.experiment
    for i, p in enumerate(obs.metadata[EARLY_STOP_KEY].get("partial") or []):
        try:
            params: dict[str, Any] = space.validate({**exp.parameters, **(p.get("fidelity") or {})})
        except SciwmError:
            continue
        sub = Experiment(f"{exp.id}.partial{i}", exp.campaign, exp.seq, params, exp.max_cost)
        out.append(
            (
                sub,
                Observation(sub.id, Status.COMPLETED, dict(p.get("outcomes") or {}), p.get("cost")),
            )
        )
    return out
