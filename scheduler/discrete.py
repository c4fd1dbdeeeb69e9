"""Exhaustive acquisition search over a finite candidate set, for spaces with categories.

Gradient-based acquisition optimisation treats a categorical parameter as a continuous
coordinate that it rounds, and needs thousands of posterior evaluations (L-BFGS-B from
several restarts) to do it. A space whose non-fidelity part is small and discrete (a
learner out of 20 at the target training size; a catalyst out of 8 at a few temperatures)
is searched faster and exactly by evaluating the acquisition once on every candidate, in a
few batched posterior calls. :func:`candidate_grid` builds that set: every combination of
the categorical choices, times every value of each small integer parameter (or
:data:`GRID_POINTS` values spread over a large one or a float), fidelity columns at the
target. Spaces without categorical parameters, or whose grid would exceed
:data:`MAX_CANDIDATES`, keep the optimiser.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping

import torch
from botorch.optim import optimize_acqf
from torch import Tensor

from sciwm.space import SearchSpace, Value

#: What the backend would really run for given parameters (e.g. a training size snapped to
#: a recorded one): :meth:`sciwm.connector.Connector.resolve`.
Canonical = Callable[[Mapping[str, Value]], dict[str, Value]]

#: Largest candidate set searched exhaustively.
MAX_CANDIDATES = 2048
#: Values tried along an integer parameter with more values than this, or along a float.
GRID_POINTS = 16
#: Candidates per batched acquisition call.
CHUNK = 512
#: Two encoded points closer than this (max-abs, unit cube) count as the same experiment.
DUPLICATE_TOL = 1e-9


def _axis(space: SearchSpace, i: int) -> list[float]:
    """Unit-cube values tried along column ``i`` (the target, 1.0, for a fidelity)."""
    p = space.parameters[i]
    if p.fidelity:
        return [1.0]
    if p.kind == "categorical":
        k = len(p.choices)
        return [j / (k - 1) for j in range(k)] if k > 1 else [0.0]
    if p.kind == "int" and not p.log and p.high - p.low + 1 <= GRID_POINTS:  # type: ignore[operator]
        n = int(p.high - p.low)  # type: ignore[operator]
        return [j / n for j in range(n + 1)] if n else [0.0]
    return [j / (GRID_POINTS - 1) for j in range(GRID_POINTS)]


def candidate_grid(space: SearchSpace, max_candidates: int = MAX_CANDIDATES) -> Tensor | None:
    """The finite candidate set of a space with categorical parameters, or ``None``.

    Args:
        space: The search space.
        max_candidates: Largest set returned.

    Returns:
        An ``m x d`` tensor of distinct unit-cube points (rounded to valid values, fidelity
        columns at 1), or ``None`` when the space has no categorical parameter or the grid
        would hold more than ``max_candidates`` points.
    """
    if not any(p.kind == "categorical" and not p.fidelity for p in space.parameters):
        return None
    axes = [_axis(space, i) for i in range(space.dim)]
    if math.prod(len(a) for a in axes) > max_candidates:
        return None
    X = torch.tensor(list(itertools.product(*axes)), dtype=torch.double)
    return torch.unique(space.round_trip(X), dim=0)


def ranked(acqf: object, X: Tensor) -> tuple[Tensor, Tensor]:
    """Candidates ``X`` (``m x d``) sorted by acquisition value, best first.

    Args:
        acqf: An acquisition function taking ``b x 1 x d`` tensors.
        X: The candidates.

    Returns:
        ``(X_sorted, values)``: an ``m x d`` tensor and the ``m`` values, descending.
    """
    with torch.no_grad():
        values = torch.cat(
            [acqf(X[i : i + CHUNK].unsqueeze(-2)).reshape(-1) for i in range(0, len(X), CHUNK)]  # type: ignore[operator]
        )
    values = torch.nan_to_num(values, nan=-math.inf)
    order = torch.argsort(values, descending=True)
    return X[order], values[order]


def ranked_points(
    acqf: object,
    space: SearchSpace,
    grid: Tensor | None,
    num_restarts: int,
    raw_samples: int,
) -> Iterator[tuple[Tensor, float]]:
    """Points (``1 x d``) of the acquisition's optima with their values, best first.

    Args:
        acqf: An acquisition function taking ``b x 1 x d`` tensors.
        space: The search space.
        grid: :func:`candidate_grid` of the space: searched exhaustively when not ``None``;
            otherwise botorch's multi-start optimiser runs with ``num_restarts`` restarts
            from ``raw_samples`` raw samples, fidelity columns fixed at the target.
        num_restarts, raw_samples: The optimiser's effort.
    """
    if grid is not None:
        X, vals = ranked(acqf, grid)
        for j in range(len(X)):
            yield X[j : j + 1], float(vals[j])
        return
    X, vals = optimize_acqf(
        acqf,  # type: ignore[arg-type]
        bounds=space.bounds(),
        q=1,
        num_restarts=num_restarts,
        raw_samples=raw_samples,
        return_best_only=False,
        fixed_features={i: 1.0 for i in space.fidelity_indices} or None,
    )
    for j in torch.argsort(vals.reshape(-1), descending=True).tolist():
        x = space.round_trip(X[j].reshape(1, -1).detach())
        with torch.no_grad():
            value = float(acqf(x.unsqueeze(0)).reshape(-1)[0])  # type: ignore[operator]
        yield x, value


def canonical_params(
    space: SearchSpace, params: Mapping[str, Value], canonical: Canonical
) -> dict[str, Value]:
    """``canonical(params)`` where that is valid in the space, else ``params`` unchanged."""
    try:
        return space.validate(canonical(dict(params)))
    except Exception:  # noqa: BLE001 - a backend's mapping never breaks a proposal
        return dict(params)


def in_growing_chunks(
    points: Iterator[tuple[Tensor, float]], first: int = 1, factor: int = 4
) -> Iterator[list[tuple[Tensor, float]]]:
    """``points`` in lists of ``first``, ``first * factor``, ... items (at most
    :data:`CHUNK`), so that a batched step over them (a fidelity choice per point) costs a
    few calls however far down the ranking the first new point lies, and one call when it
    is the first."""
    size, chunk = max(1, first), []
    for item in points:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk, size = [], min(CHUNK, size * factor)
    if chunk:
        yield chunk
