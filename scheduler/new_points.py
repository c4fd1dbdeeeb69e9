"""Which points are new experiments: in the backend's form, not yet seen, admitted.

A backend may snap what it is asked (a replayed data set answers a training size with the
largest one it recorded below it: :meth:`sciwm.connector.Connector.resolve`), so two
different points of the unit cube can be the same experiment. Every point the agent
proposes is first put in that *canonical* form (:func:`to_canonical`) and only then compared
with the experiments run, pending or answered (:class:`SeenPoints`); optionally it must also
be *admitted* (an :data:`Admit` predicate, e.g. "the dispatch gate can pay for it now").
:func:`first_admitted` takes the first new admitted point of a ranked stream;
:func:`fidelity_grid` spreads a set of points over the fidelity axis, so that a search whose
every optimum was run at the target fidelity still finds points not yet run there, at any
fidelity; :func:`unseen_at_target` admits only those (a shorter run of a point measured at
the target tells the campaign nothing it needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from scheduler.discrete import DUPLICATE_TOL, Canonical, canonical_params
from scheduler.fidelity import project_to_target
from sciwm.space import SearchSpace

#: Whether each of ``n`` points (``n x d``, canonical form) may be proposed.
Admit = Callable[[Tensor], Sequence[bool]]

#: Values tried along the fidelity axis by :func:`fidelity_grid`.
FIDELITY_LEVELS = 64
#: Most points :func:`fidelity_grid` returns.
MAX_GRID = 4096


def to_canonical(space: SearchSpace, X: Tensor, canonical: Canonical | None) -> Tensor:
    """``X`` (``n x d``) as the backend would run it, re-encoded (``n x d``).

    Without ``canonical`` the points are only rounded to valid values.
    """
    X = X.reshape(-1, space.dim)
    if canonical is None:
        return space.round_trip(X)
    rows = [canonical_params(space, p, canonical) for p in space.decode(X)]
    return space.encode(rows).reshape(-1, space.dim)


class SeenPoints:
    """Experiments already run, pending, answered or chosen, as encoded canonical points.

    Two points closer than :data:`scheduler.discrete.DUPLICATE_TOL` in every coordinate are
    the same experiment; lookups are by rounded coordinates, so a check costs the same at
    ten results and at ten thousand.

    Args:
        X: Encoded canonical points seen so far (``m x d``).
    """

    def __init__(self, X: Tensor) -> None:
        self._keys: set[tuple[int, ...]] = set()
        self.add(X)

    @staticmethod
    def _key_rows(X: Tensor) -> list[tuple[int, ...]]:
        return [tuple(r) for r in torch.round(X / DUPLICATE_TOL).to(torch.int64).tolist()]

    def add(self, X: Tensor) -> None:
        """Note the points ``X`` (``d`` or ``m x d``) as seen."""
        if X.numel():
            self._keys.update(self._key_rows(X.reshape(-1, X.shape[-1])))

    def __contains__(self, x: Tensor) -> bool:
        return self._key_rows(x.reshape(1, -1))[0] in self._keys

    def new_mask(self, X: Tensor) -> Tensor:
        """Which rows of ``X`` (``n x d``) are not seen: a boolean ``n`` tensor."""
        return torch.tensor([k not in self._keys for k in self._key_rows(X)], dtype=torch.bool)


def first_admitted(
    points: Iterable[tuple[Tensor, float | None]],
    seen: SeenPoints,
    admit: Admit | None = None,
    chunk: int = 16,
) -> tuple[Tensor, float | None] | None:
    """The first of ``points`` (canonical ``d`` tensors, best first) new and admitted.

    Without ``admit`` the first new point wins at once; with it, new points are admitted in
    batches of ``chunk`` (one call per batch, e.g. one batched prediction).

    Returns:
        ``(x, value)``, or ``None`` when no point is both new and admitted.
    """
    batch: list[tuple[Tensor, float | None]] = []
    batch_seen = SeenPoints(torch.empty(0))

    def judge() -> tuple[Tensor, float | None] | None:
        if not batch:
            return None
        assert admit is not None
        ok = admit(torch.stack([x for x, _ in batch]))
        found = next((b for b, good in zip(batch, ok, strict=True) if good), None)
        batch.clear()
        return found

    for x, value in points:
        if x in seen or x in batch_seen:
            continue
        if admit is None:
            return x, value
        batch.append((x, value))
        batch_seen.add(x)
        if len(batch) >= chunk:
            found = judge()
            if found is not None:
                return found
    return judge()


def unseen_at_target(
    space: SearchSpace, seen: SeenPoints, canonical: Canonical | None, admit: Admit | None
) -> Admit | None:
    """``admit`` and, with fidelity parameters, "not yet run (or pending) at the target
    fidelity": once a point's target-fidelity outcome is measured, a shorter run of it
    tells the campaign nothing it needs, so it is not proposed."""
    dims = space.fidelity_indices
    if not dims:
        return admit

    def ok(X: Tensor) -> Sequence[bool]:
        keep = seen.new_mask(to_canonical(space, project_to_target(X, dims), canonical))
        return keep if admit is None else keep & torch.as_tensor(admit(X), dtype=torch.bool)

    return ok


def fidelity_grid(space: SearchSpace, X: Tensor, levels: int = FIDELITY_LEVELS) -> Tensor:
    """The points ``X`` (``m x d``) at every one of ``levels`` fidelity values.

    Every fidelity column takes the same unit-cube value, ``levels`` values spread over
    ``[0, 1]`` (fewer when ``m x levels`` would exceed :data:`MAX_GRID`). Without a
    fidelity parameter ``X`` is returned unchanged.

    Returns:
        An ``(m * levels) x d`` tensor, rounded to valid values.
    """
    dims = space.fidelity_indices
    if not dims or len(X) == 0:
        return X
    levels = max(2, min(levels, MAX_GRID // max(1, len(X))))
    grid = []
    for s in torch.linspace(0.0, 1.0, levels, dtype=X.dtype).tolist():
        Xs = X.clone()
        Xs[:, dims] = s
        grid.append(Xs)
    return space.round_trip(torch.cat(grid))


def unique_rows(X: Tensor) -> Tensor:
    """The distinct rows of ``X`` (``n x d``), in order of first appearance."""
    seen = SeenPoints(torch.empty(0))
    keep = []
    for i in range(len(X)):
        if X[i] not in seen:
            seen.add(X[i])
            keep.append(i)
    return X[keep]
