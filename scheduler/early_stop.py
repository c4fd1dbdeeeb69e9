"""Early stopping: cancel a running experiment whose partial result shows it cannot matter.

A connector that reports partial results (:meth:`sciwm.connector.Connector.partial`: the
learning curve so far of a training run, the simulation so far of an MD run) lets the loop
ask, while the experiment runs, what its final result will be. The world model's own view of
what a short run says about a long one answers: with ``y_k`` measured at fidelity ``s_k``
and the model's predictions ``mu(s)``, ``sigma(s)`` of the same experiment at ``s_k`` and at
its final fidelity ``s_T``, the final result is predicted as

    y_T ~ N(y_k + mu(s_T) - mu(s_k),  sigma(s_T)^2 + sigma(s_k)^2),

the measured point shifted by the gain the model expects from the rest of the run, with the
uncertainty of both predictions (as if their errors were independent: the cautious choice).
The run is cancelled when even the upper end of that prediction's one-sided
:data:`DEFAULT_CONFIDENCE` interval stays below the best real result so far: with that
confidence the run cannot improve on it. The predicted cost of the rest of the run is what
stopping saves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from sciwm.errors import SciwmError
from sciwm.space import SearchSpace, Value
from sciwm.world_model import WorldModel

#: One-sided confidence that a stopped run could not have beaten the best result.
DEFAULT_CONFIDENCE = 0.99


@dataclass(frozen=True)
class StopVerdict:
    """Whether to stop one running experiment.

    Attributes:
        stop: Whether it cannot matter, with confidence.
        predicted_mean: Predicted final result.
        predicted_upper: Upper end of its one-sided interval.
        saved_cost: Predicted cost of the rest of the run (0 when not stopped).
        reason: Human-readable explanation.
    """

    stop: bool
    predicted_mean: float
    predicted_upper: float
    saved_cost: float
    reason: str


def judge_running(
    model: WorldModel,
    space: SearchSpace,
    objective: str,
    maximize: bool,
    parameters: Mapping[str, Value],
    partial: Sequence[Mapping[str, Any]],
    best: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> StopVerdict | None:
    """Judge a running experiment on its latest partial result.

    Args:
        model: The fitted world model.
        space: The search space (a partial point's fidelity must lie inside it).
        objective: The objective's name.
        maximize: Whether it is maximised.
        parameters: The running experiment's parameters (its final fidelity included).
        partial: Its partial results so far (:meth:`~sciwm.connector.Connector.partial`).
        best: The best real result so far.
        confidence: One-sided confidence a stop needs.

    Returns:
        The verdict, or ``None`` when no partial point can be judged (none yet, or none
        inside the space).
    """
    point = _latest(space, parameters, partial, objective)
    if point is None:
        return None
    at_k, y_k, cost_k = point
    try:
        pred_k, pred_t = model.predict([at_k, dict(parameters)])
    except SciwmError:
        return None
    e_k, e_t = pred_k.outcomes.get(objective), pred_t.outcomes.get(objective)
    if e_k is None or e_t is None:
        return None
    sign = 1.0 if maximize else -1.0
    mean = y_k + (e_t.mean - e_k.mean)
    std = math.sqrt(e_t.std**2 + e_k.std**2)
    if not (math.isfinite(mean) and math.isfinite(std)):
        return None
    z = NormalDist().inv_cdf(confidence)
    upper = mean + sign * z * std  # the optimistic end, in the objective's direction
    saved = max(0.0, float(pred_t.cost.mean) - cost_k) if math.isfinite(pred_t.cost.mean) else 0.0
    where = ", ".join(f"{k}={v}" for k, v in at_k.items() if space[k].fidelity)
    if sign * upper < sign * best:
        return StopVerdict(
            True,
            mean,
            upper,
            saved,
            f"stopped early: {objective} {y_k:.4g} at {where} predicts {mean:.4g} at the end "
            f"(at best {upper:.4g} with {confidence:.0%} confidence), which cannot reach the "
            f"best result {best:.4g}; predicted cost saved {saved:.4g}",
        )
    return StopVerdict(
        False, mean, upper, 0.0, f"may still matter: predicts {mean:.4g} (up to {upper:.4g})"
    )


def _latest(
    space: SearchSpace,
    parameters: Mapping[str, Value],
    partial: Sequence[Mapping[str, Any]],
    objective: str,
) -> tuple[dict[str, Value], float, float] | None:
    """The last partial point inside the space: its parameters, objective value and cost."""
    for p in reversed(list(partial)):
        fid = p.get("fidelity") or {}
        value = (p.get("outcomes") or {}).get(objective)
        if not fid or value is None or not math.isfinite(float(value)):
            continue
        if not all(k in parameters and space[k].fidelity for k in fid):
            continue
        try:
            at_k = space.validate({**parameters, **fid})
        except SciwmError:
            continue
        if at_k == space.validate(dict(parameters)):
            continue  # the final point itself: the run is done, nothing to stop
        return at_k, float(value), float(p.get("cost") or 0.0)
    return None
