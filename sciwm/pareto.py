"""Pareto fronts, hypervolumes and feasibility of recorded results (several objectives).

One home for what the loop, ``sciwm campaign status``, ``report`` and the benchmark say about
a multi-objective or constrained campaign. Objectives keep their natural sign in the
arguments; each function flips the minimised ones internally so that larger is better.

The reference point of the hypervolume is the campaign file's (``ref`` of every
``[[objectives]]`` entry) or, where any is left out, inferred from the results
(:func:`reference_point`): botorch's ``infer_reference_point``, i.e. the worst value of each
objective over the observed Pareto front, moved a further 10% of the front's range in each
objective (an objective whose values on the front do not spread is moved by 10% of its
magnitude, or 1e-6 near zero). Given coordinates are kept, inferred ones fill the gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

#: Share of the front's range the inferred reference point lies beyond its worst values.
REF_SCALE = 0.1


def _signs(maximize: Sequence[bool]) -> Tensor:
    return torch.tensor([1.0 if m else -1.0 for m in maximize], dtype=torch.double)


def as_tensor(values: Sequence[Sequence[float]], m: int) -> Tensor:
    """``n x m`` double tensor of outcome rows (an empty ``0 x m`` for no rows)."""
    if not values:
        return torch.empty(0, m, dtype=torch.double)
    return torch.tensor([list(map(float, v)) for v in values], dtype=torch.double)


def pareto_mask(Y: Tensor, maximize: Sequence[bool]) -> Tensor:
    """Which rows of ``Y`` are not dominated by another row.

    Args:
        Y: A ``n x m`` tensor of objective values, natural sign.
        maximize: ``m`` directions.

    Returns:
        A ``n`` bool tensor (duplicates of a front point all count as on the front).
    """
    from botorch.utils.multi_objective.pareto import is_non_dominated

    if Y.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool)
    return is_non_dominated(Y * _signs(maximize), deduplicate=False)


def reference_point(
    Y: Tensor, maximize: Sequence[bool], given: Sequence[float | None] | None = None
) -> list[float] | None:
    """The hypervolume's reference point, natural sign (see the module docstring).

    Args:
        Y: A ``n x m`` tensor of observed objective values.
        maximize: ``m`` directions.
        given: ``m`` coordinates from the campaign file (``None`` where left out).

    Returns:
        ``m`` coordinates, or ``None`` when a coordinate must be inferred and there is no
        result to infer it from.
    """
    m = len(maximize)
    given = list(given) if given is not None else [None] * m
    if all(g is not None for g in given):
        return [float(g) for g in given]  # type: ignore[arg-type]
    if Y.shape[0] == 0:
        return None
    from botorch.utils.multi_objective.hypervolume import infer_reference_point

    signs = _signs(maximize)
    front = (Y * signs)[pareto_mask(Y, maximize)]
    inferred = (infer_reference_point(front, scale=REF_SCALE) * signs).tolist()
    return [float(g) if g is not None else float(r) for g, r in zip(given, inferred, strict=True)]


def hypervolume(Y: Tensor, maximize: Sequence[bool], ref: Sequence[float]) -> float:
    """Hypervolume dominated by the rows of ``Y`` and bounded by ``ref``.

    Args:
        Y: A ``n x m`` tensor of objective values, natural sign.
        maximize: ``m`` directions.
        ref: ``m`` reference coordinates, natural sign.

    Returns:
        The hypervolume (0 when no row is better than ``ref`` in every objective).
    """
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    signs = _signs(maximize)
    r = torch.tensor(list(ref), dtype=torch.double) * signs
    Z = Y * signs
    Z = Z[(Z > r).all(dim=-1)] if Z.shape[0] else Z
    if Z.shape[0] == 0:
        return 0.0
    return float(Hypervolume(ref_point=r).compute(Z[pareto_mask(Z, [True] * len(ref))]))


def hypervolume_trace(Y: Tensor, maximize: Sequence[bool], ref: Sequence[float]) -> list[float]:
    """Hypervolume of the first ``k`` rows, for ``k = 1 .. n`` (``n`` values)."""
    out: list[float] = []
    for k in range(1, Y.shape[0] + 1):
        out.append(hypervolume(Y[:k], maximize, ref))
    return out


def feasible(outcomes: Mapping[str, float], constraints: Sequence[Any]) -> bool:
    """Whether a result satisfies every constraint (each with ``outcome``, ``holds(v)``).

    A constrained outcome that is missing or not finite counts as infeasible.
    """
    for c in constraints:
        v = outcomes.get(c.outcome)
        if v is None or not math.isfinite(float(v)) or not c.holds(float(v)):
            return False
    return True
