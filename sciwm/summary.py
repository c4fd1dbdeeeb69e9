"""Campaign summaries computed from records: best so far, spent cost, counts by status."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sciwm.experiment import Status

if TYPE_CHECKING:
    from sciwm.space import SearchSpace
    from sciwm.spec import CampaignSpec
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


def campaign_summary(
    records: Sequence[Record],
    maximize: bool,
    objective: str,
    constraints: Sequence[Any] = (),
) -> dict[str, Any]:
    """Where a campaign stands.

    Args:
        records: The campaign's records (as from :meth:`sciwm.store.RecordStore.records`).
        maximize: Whether the objective is maximised.
        objective: Name of the objective outcome.
        constraints: The campaign's outcome constraints (``[[constraints]]``): the best
            value is the best feasible one.

    Returns:
        A JSON-serialisable dict: ``n_experiments``; ``counts`` by status value (every status
        present, zeros included); ``spent``, the sum of measured costs of all observations
        (failures cost too); ``best_value``, ``best_parameters`` and ``best_experiment_id``
        over completed (and feasible) experiments with a finite objective (``None`` when
        there is none); ``n_feasible``, completed experiments that satisfy every constraint.
    """
    from sciwm.pareto import feasible

    counts = {status.value: 0 for status in Status}
    spent = 0.0
    n_feasible = 0
    best: tuple[float, Record] | None = None
    for record in records:
        counts[record.status.value] += 1
        obs = record.observation
        if obs is None:
            continue
        if obs.cost is not None and math.isfinite(obs.cost):
            spent += obs.cost
        if obs.status is not Status.COMPLETED or not feasible(obs.outcomes, constraints):
            continue
        n_feasible += 1
        value = obs.outcomes.get(objective)
        if value is None or not math.isfinite(value):
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
        "n_feasible": n_feasible,
    }


def infeasible_note(n_completed: int, n_feasible: int, constraints: Sequence[Any]) -> str | None:
    """What to say when no completed result satisfies the constraints (else ``None``).

    Args:
        n_completed: Completed experiments.
        n_feasible: Those that satisfy every constraint.
        constraints: The constraints (each with ``outcome``, ``op`` and ``bound``).
    """
    if not constraints or n_feasible or not n_completed:
        return None
    what = ", ".join(f"{c.outcome} {c.op} {c.bound:g}" for c in constraints)
    return (
        f"infeasible so far: none of the {n_completed} completed experiments satisfies "
        f"every constraint ({what}); the best result reported is the best feasible one"
    )


def completed_in_order(records: Sequence[Record]) -> list[Record]:
    """Finished records in order of completion (finish time, then sequence number)."""
    finished = [r for r in records if r.observation is not None]
    finished.sort(key=lambda r: (r.observation.finished_at or 0.0, r.experiment.seq))  # type: ignore[union-attr]
    return finished


def pareto_summary(records: Sequence[Record], spec: CampaignSpec) -> dict[str, Any]:
    """The Pareto front of a campaign with several objectives.

    Only completed, feasible results with every objective finite count.

    Args:
        records: The campaign's records.
        spec: The campaign (its ``[[objectives]]`` and ``[[constraints]]``).

    Returns:
        A JSON-serialisable dict: ``front``, a list of ``{"experiment_id", "parameters",
        "outcomes"}`` (the objectives' values), best first in the first objective;
        ``hypervolume`` (``None`` without a result); ``ref`` (the reference point, natural
        sign) and ``ref_inferred`` (whether any coordinate was inferred); ``n_feasible``;
        ``dominated_by_ref``: whether results exist but none beats ``ref`` in every
        objective (the hypervolume is then 0).
    """
    from sciwm.pareto import as_tensor, feasible, hypervolume, pareto_mask, reference_point

    names = [o.name for o in spec.objectives]
    maximize = [o.maximize for o in spec.objectives]
    usable = [
        r
        for r in completed_in_order(records)
        if r.observation is not None
        and r.observation.status is Status.COMPLETED
        and feasible(r.observation.outcomes, spec.constraints)
        and all(
            n in r.observation.outcomes and math.isfinite(r.observation.outcomes[n]) for n in names
        )
    ]
    Y = as_tensor([[r.observation.outcomes[n] for n in names] for r in usable], len(names))  # type: ignore[union-attr]
    given = [o.ref for o in spec.objectives]
    ref = reference_point(Y, maximize, given)
    mask = pareto_mask(Y, maximize).tolist()
    front = [
        {
            "experiment_id": r.experiment.id,
            "parameters": dict(r.experiment.parameters),
            "outcomes": {n: r.observation.outcomes[n] for n in names},  # type: ignore[union-attr]
        }
        for r, on in zip(usable, mask, strict=True)
        if on
    ]
    front.sort(key=lambda p: p["outcomes"][names[0]], reverse=maximize[0])
    hv = None if ref is None else hypervolume(Y, maximize, ref)
    return {
        "front": front,
        "hypervolume": hv,
        "ref": ref,
        "ref_inferred": any(g is None for g in given),
        "n_feasible": len(usable),
        "dominated_by_ref": bool(usable) and hv == 0.0,
    }


#: Metadata key of an observation cancelled by early stopping: ``{"reason", "saved_cost"}``.
EARLY_STOP_KEY = "early_stop"


def gate_summary(records: Sequence[Record], virtual: Sequence[Any]) -> dict[str, Any]:
    """What the value gate and early stopping saved.

    Args:
        records: The campaign's experiment records.
        virtual: Its virtual answers (:meth:`sciwm.store.RecordStore.virtual_answers`).

    Returns:
        ``n_virtual`` and ``virtual_saved`` (predicted cost of the proposals answered
        virtually), ``n_stopped_early`` and ``stopped_saved`` (predicted cost the cancelled
        runs did not spend).
    """
    stopped = [
        r.observation.metadata[EARLY_STOP_KEY]
        for r in records
        if r.observation is not None and EARLY_STOP_KEY in r.observation.metadata
    ]
    return {
        "n_virtual": len(virtual),
        "virtual_saved": math.fsum(float(v.saved_cost) for v in virtual),
        "n_stopped_early": len(stopped),
        "stopped_saved": math.fsum(float(s.get("saved_cost", 0.0)) for s in stopped),
    }


def gate_lines(summary: Mapping[str, Any], unit: str) -> list[str]:
    """Lines for ``sciwm campaign status`` and ``report`` from :func:`gate_summary`."""
    lines = []
    if summary["n_virtual"]:
        lines.append(
            f"answered virtually: {summary['n_virtual']} proposal(s), predicted cost saved "
            f"{summary['virtual_saved']:.4g} {unit} (world-model predictions, not measurements)"
        )
    if summary["n_stopped_early"]:
        lines.append(
            f"stopped early: {summary['n_stopped_early']} run(s), predicted cost saved "
            f"{summary['stopped_saved']:.4g} {unit}"
        )
    return lines
