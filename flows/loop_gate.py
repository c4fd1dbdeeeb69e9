"""The campaign loop's value gate: proposals the world model answers instead of a real run.

:func:`answer_virtually` runs :class:`scheduler.virtual.ValueGate` on a round's proposals,
records each virtual answer in the store (an MLflow run tagged ``sciwm.virtual = true``,
never an experiment) and hands back the proposals worth running. A virtually answered
proposal is never proposed again, and never counts as a result, a best value or training
data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scheduler.gate import Candidate
from scheduler.virtual import DEFAULT_STOP_AFTER, ValueGate, trust

if TYPE_CHECKING:
    from flows.loop import CampaignLoop
    from sciwm.spec import CampaignSpec

log = logging.getLogger("sciwm.campaign")


def build_value_gate(spec: CampaignSpec) -> ValueGate:
    """The value gate the campaign file asks for (``[scheduler] virtual*`` settings)."""
    sched = spec.scheduler
    single = not spec.multi_objective and not spec.constraints
    kwargs = {} if sched.virtual_min_results is None else {"min_results": sched.virtual_min_results}
    return ValueGate(
        spec.space(),
        spec.objective.name,
        spec.maximize,
        tolerance=sched.virtual_tolerance,
        enabled=sched.virtual and single,
        **kwargs,
    )


def answer_virtually(loop: CampaignLoop, candidates: list[Candidate]) -> list[Candidate]:
    """Record the proposals not worth a real run as virtual answers; return the others.

    Args:
        loop: The campaign loop (its model, store, state and value gate).
        candidates: The round's proposals, best first.

    Returns:
        The candidates to hand to the budget gate, in their order.
    """
    gate: ValueGate = loop.value_gate
    if not gate.enabled or not candidates:
        return candidates
    pairs = [(r.prediction, r.observation) for r in loop.state.finished if r.observation]
    trusted = trust(pairs, gate.objective, gate.min_results)
    model = loop.model if loop.model.is_fitted else None
    costs = sorted(
        r.observation.cost
        for r in loop.state.finished
        if r.observation and r.observation.cost and r.observation.cost > 0
    )
    ref_cost = costs[len(costs) // 2] if costs else float("nan")
    answers = gate.judge(model, candidates, loop.objective_values(), ref_cost, trusted)
    keep = []
    for cand, answer in zip(candidates, answers, strict=True):
        if answer is None:
            keep.append(cand)
            continue
        loop.store.record_virtual(
            loop.spec.name, answer.parameters, answer.prediction, answer.saved_cost, answer.reason
        )
        state = loop.state
        state.answered.append(dict(answer.parameters))
        state.virtual_saved += answer.saved_cost
        state.virtual_streak += 1
        log.info("%s: %s", _fmt(answer.parameters), answer.reason)
    if len(keep) < len(candidates) and not keep:
        streak = loop.state.virtual_streak
        if streak >= DEFAULT_STOP_AFTER and not loop.state.running:
            loop.state.stop_reason = (
                f"the world model answered the last {streak} proposals with confidence: none is "
                "worth its predicted cost (see the virtual answers in the record store)"
            )
    return keep


def _fmt(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
