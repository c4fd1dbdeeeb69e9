"""Campaign summaries computed from records: best so far, spent cost, counts by status."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sciwm.experiment import Status

if TYPE_CHECKING:
    from sciwm.space import SearchSpace
    from sciwm.store import Record


def fidelity_note(space: SearchSpace, parameters: Mapping[str, Any]) -> str | None:
    """Say when a result was measured below the target (highest) fidelity.

    A campaign with a fidelity parameter (simulation length, epochs) may find its best value in
    a cheap, low-fidelity experiment, whose outcome is a noisier or biased estimate of the
    target-fidelity one; the user must be told.

    Args:
        space: The campaign's search space.
        parameters: The experiment's parameters.

    Returns:
        ``None`` at the target fidelity (or without fidelity parameters), else a short note such
        as ``"measured at length_ps=20, below the target fidelity length_ps=500"``.
    """
    below = [
        (p.name, parameters[p.name], p.high)
        for p in space.parameters
        if p.fidelity
        and p.high is not None
        and float(parameters[p.name]) < p.high
        and not math.isclose(float(parameters[p.name]), p.high, rel_tol=1e-9)
    ]
    if not below:
        return None
    at = ", ".join(f"{n}={v:g}" for n, v, _ in below)
    target = ", ".join(f"{n}={h:g}" for n, _, h in below)
    return f"measured at {at}, below the target fidelity {target}"


def campaign_summary(records: Sequence[Record], maximize: bool, objective: str) -> dict[str, Any]:
    """Where a campaign stands.

    Args:
        records: The campaign's records (as from :meth:`sciwm.store.RecordStore.records`).
        maximize: Whether the objective is maximised.
        objective: Name of the objective outcome.

    Returns:
        A JSON-serialisable dict: ``n_experiments``; ``counts`` by status value (every status
        present, zeros included); ``spent``, the sum of measured costs of all observations
        (failures cost too); ``best_value``, ``best_parameters`` and ``best_experiment_id``
        over completed experiments with a finite objective (``None`` when there is none).
    """
    counts = {status.value: 0 for status in Status}
    spent = 0.0
    best: tuple[float, Record] | None = None
    for record in records:
        counts[record.status.value] += 1
        obs = record.observation
        if obs is None:
            continue
        if obs.cost is not None and math.isfinite(obs.cost):
            spent += obs.cost
        value = obs.outcomes.get(objective)
        if obs.status is not Status.COMPLETED or value is None or not math.isfinite(value):
            continue
        if best is None or (value > best[0] if maximize else value < best[0]):
            best = (float(value), record)
    return {
        "n_experiments": len(records),
        "counts": counts,
        "spent": spent,
        "best_value": None if best is None else best[0],
        "best_parameters": None if best is None else dict(best[1].experiment.parameters),
        "best_experiment_id": None if best is None else best[1].experiment.id,
    }
