"""How the agent picks points: its designs and the optimisation of its acquisition.

:class:`AgentOptimizer` is the half of :class:`scheduler.agent.Agent` that turns a fitted
world model into points of the unit cube: the seeded Sobol and random designs, and the
acquisition's optimisation, point by point (sequential greedy, each chosen point fantasised
as pending before the next) or jointly for a large enough batch. A point that repeats an
experiment run, pending or answered, in the form the backend would run it, is never chosen.
It holds no state of its own: it reads the settings :class:`~scheduler.agent.Agent` sets.

Every point is snapped to the backend's canonical form before it is compared with what was
seen (:mod:`scheduler.new_points`); when every optimum of the acquisition repeats a seen
experiment, the acquisition's best new point on a grid spread over the fidelity axis is
taken, then a random new one. An optional ``admit`` predicate (the dispatch gate's "it fits
the budget left") restricts every choice the same way. When nothing new is admitted, fewer
points than asked are returned.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from scheduler.acquisition import build_acquisition
from scheduler.constraints import OutcomeConstraint
from scheduler.discrete import (
    Canonical,
    candidate_grid,
    in_growing_chunks,
    ranked,
    ranked_points,
)
from scheduler.fidelity import at_target_fidelity, choose_fidelities, project_to_target
from scheduler.joint_batch import JOINT_ACQUISITIONS, optimize_joint
from scheduler.multiobjective import Objectives
from scheduler.new_points import (
    Admit,
    SeenPoints,
    fidelity_grid,
    first_admitted,
    to_canonical,
    unique_rows,
    unseen_at_target,
)
from sciwm.experiment import Experiment, Observation
from sciwm.pareto import as_tensor, feasible
from sciwm.space import SearchSpace
from sciwm.world_model import WorldModel

logger = logging.getLogger("scheduler.agent")

#: Acquisitions that weigh cost, and so choose the fidelity of what they propose; the others
#: propose at the target fidelity.
COST_AWARE = ("ei_per_cost", "gittins")

#: Completed experiments of the Sobol initial design before the world model steers, for a
#: world model that cannot predict before real results (see
#: :func:`scheduler.agent.default_initial_experiments`); also the size of the design whose
#: predictions a model without results improves on.
DEFAULT_INITIAL_EXPERIMENTS = 5


class AgentOptimizer:
    """Designs and acquisition optimisation of :class:`scheduler.agent.Agent` (a mixin).

    It uses the agent's settings: ``space``, ``objective``, ``maximize``, ``acquisition``,
    ``seed``, ``num_restarts``, ``raw_samples``, ``cost_exponent`` (this round's, cooled:
    ``_exponent``), ``gittins_lambda``,
    ``objectives``, ``constraints`` and ``joint_batch_above``.
    """

    space: SearchSpace
    objective: str
    maximize: bool
    acquisition: str
    seed: int
    num_restarts: int
    raw_samples: int
    cost_exponent: float
    _exponent: float
    gittins_lambda: float | None
    objectives: Objectives | None
    constraints: tuple[OutcomeConstraint, ...]
    joint_batch_above: int
    _candidates: dict[object, Tensor]

    # -- designs ------------------------------------------------------------------------
    def _sobol(self, n_prior: int, n: int) -> Tensor:
        """Points ``n_prior .. n_prior + n - 1`` of the seeded scrambled Sobol sequence."""
        engine = torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=self.seed)
        if n_prior:
            engine.fast_forward(n_prior)
        return self.space.round_trip(engine.draw(n, dtype=torch.double))

    def _random(self, n_prior: int, n: int, salt: int = 0) -> Tensor:
        """Uniform points, reproducible from the seed and the number already proposed."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + n_prior * 7919 + salt)
        return self.space.round_trip(
            torch.rand(n, self.space.dim, generator=gen, dtype=torch.double)
        )

    def _random_new(
        self,
        step: int,
        seen: SeenPoints,
        canonical: Canonical | None,
        admit: Admit | None = None,
        tries: int = 100,
    ) -> Tensor | None:
        """A random new (and admitted) canonical point (``d``): of ``tries`` uniform ones, else
        of :meth:`candidate_points` in a seeded random order; ``None`` when there is none."""
        X = torch.cat([self._random(step, 1, salt=salt) for salt in range(1, tries + 1)])
        X = to_canonical(self.space, X, canonical)
        found = first_admitted(((x, None) for x in X), seen, admit)
        if found is None:  # a snapping backend: few uniform points land on its rarer values
            grid = self.candidate_points(canonical=canonical, seed=self.seed + step)
            order = torch.randperm(len(grid), generator=torch.Generator().manual_seed(step))
            found = first_admitted(((x, None) for x in grid[order]), seen, admit, chunk=256)
        return None if found is None else found[0]

    def _new_design(
        self,
        X: Tensor,
        seen: SeenPoints,
        n_prior: int,
        canonical: Canonical | None,
        admit: Admit | None = None,
    ) -> Tensor:
        """Design points ``X`` (``n x d``) in canonical form; one that repeats a seen
        experiment (or an earlier point) or is not admitted is replaced by a random new one,
        or dropped when there is none."""
        X = to_canonical(self.space, X, canonical)
        keep = []
        for i, x in enumerate(X):
            ok = x not in seen and (admit is None or bool(admit(x.unsqueeze(0))[0]))
            x_new = x if ok else self._random_new(n_prior + i, seen, canonical, admit)
            if x_new is not None:
                seen.add(x_new)
                keep.append(x_new)
        return torch.stack(keep) if keep else X[:0]

    # -- Bayesian optimisation ----------------------------------------------------------
    def _optimize(
        self,
        model: WorldModel,
        completed: Sequence[Experiment],
        seen: SeenPoints,
        X_pending: Tensor,
        n: int,
        n_prior: int,
        slot_cost: float = 0.0,
        results: Mapping[str, Observation] | None = None,
        n_completed: int | None = None,
        canonical: Canonical | None = None,
        admit: Admit | None = None,
    ) -> tuple[Tensor, list[float | None]]:
        """A batch of at most ``n`` points (``k x d``, canonical) and their acquisition values:
        sequential greedy, or joint past ``joint_batch_above`` of ``n_completed`` (default:
        ``len(completed)``).

        ``seen`` (run, pending or answered, canonical) is never proposed again and grows by
        each chosen point; ``X_pending`` (``p x d``) is fantasised.
        """
        space = self.space
        Y_base = None
        # the acquisition values the target fidelity and improves on what was measured there:
        # a low-fidelity result informs the world model but is not a deliverable
        X_base = None
        if completed:
            outcomes = [(results or {})[e.id].outcomes for e in completed]
            X_done = space.encode([e.parameters for e in completed]).reshape(-1, space.dim)
            keep = at_target_fidelity(X_done, space.fidelity_indices).tolist()
            if self.constraints:  # improve on the feasible results (none: feasibility alone)
                keep = [
                    k and feasible(o, self.constraints) for k, o in zip(keep, outcomes, strict=True)
                ]
            if self.constraints or any(keep):
                X_base = X_done[torch.tensor(keep, dtype=torch.bool)]
                outcomes = [o for k, o in zip(keep, outcomes, strict=True) if k]
                if self.objectives is not None:
                    Y_base = as_tensor(
                        [[o[k] for k in self.objectives.names] for o in outcomes],
                        len(self.objectives.names),
                    )
        if X_base is None:  # nothing at the target yet: improve on the design it replaces
            X_base = self._sobol(0, DEFAULT_INITIAL_EXPERIMENTS)
        X_baseline = project_to_target(X_base, space.fidelity_indices)
        if admit is None and self._joint(n, len(completed) if n_completed is None else n_completed):
            joint = self._optimize_joint(model, X_baseline, X_pending, seen, n, n_prior, canonical)
            if joint is not None:
                return joint
        chosen: list[Tensor] = []
        values: list[float | None] = []
        for i in range(n):
            X_pend = torch.cat([X_pending, *[c.unsqueeze(0) for c in chosen]])
            found = self._optimize_one(
                model,
                X_baseline,
                X_pend if len(X_pend) else None,
                seen,
                n_prior + i,
                slot_cost,
                Y_base,
                canonical,
                admit,
            )
            if found is None:
                break
            x, value = found
            chosen.append(x)
            values.append(value)
            seen.add(x)
        X = torch.stack(chosen) if chosen else torch.empty(0, space.dim, dtype=torch.double)
        return X, values

    def _joint(self, n: int, n_completed: int) -> bool:
        """Whether this batch is optimised jointly (see ``joint_batch_above``)."""
        return (
            n > 1
            and bool(self.joint_batch_above)
            and n_completed >= self.joint_batch_above
            and self.acquisition in JOINT_ACQUISITIONS
            and self.objectives is None
            and not self.constraints
            and not self.space.fidelity_indices
        )

    def _optimize_joint(
        self,
        model: WorldModel,
        X_baseline: Tensor,
        X_pending: Tensor,
        seen: SeenPoints,
        n: int,
        n_prior: int,
        canonical: Canonical | None = None,
    ) -> tuple[Tensor, list[float | None]] | None:
        """The batch in one optimiser run; ``None`` (go point by point) if that fails."""
        seed = self.seed * 1_000_003 + n_prior
        try:
            acqf = build_acquisition(
                model,
                self.objective,
                self.maximize,
                X_baseline,
                X_pending if len(X_pending) else None,
                kind=self.acquisition,
                cost_exponent=self._exponent,
                seed=seed,
            )
            X, values = optimize_joint(
                acqf, self.space, n, self.num_restarts, self.raw_samples, seed
            )
        except Exception as exc:  # noqa: BLE001 - the point-by-point path still works
            logger.warning("joint batch optimisation failed (%s); going point by point", exc)
            return None
        X = to_canonical(self.space, X, canonical)
        keep: list[Tensor] = []
        kept_values: list[float | None] = []
        for i in range(n):  # a repeat of anything run, pending or earlier in the batch
            x, value = X[i], values[i]
            if x in seen:
                x, value = self._random_new(n_prior + i, seen, canonical), None
            if x is not None:
                seen.add(x)
                keep.append(x)
                kept_values.append(value)
        if not keep:
            return X[:0], []
        return torch.stack(keep), kept_values

    def _optimize_one(
        self,
        model: WorldModel,
        X_baseline: Tensor,
        X_pending: Tensor | None,
        seen: SeenPoints,
        step: int,
        slot_cost: float = 0.0,
        Y_baseline: Tensor | None = None,
        canonical: Canonical | None = None,
        admit: Admit | None = None,
    ) -> tuple[Tensor, float | None] | None:
        """Best new (and admitted) canonical point (``d``) of the acquisition with its value;
        a random new one if that fails; ``None`` when there is none."""
        seed = self.seed * 1_000_003 + step
        space = self.space
        worth = unseen_at_target(space, seen, canonical, admit)
        try:
            with torch.random.fork_rng(), warnings.catch_warnings():
                torch.manual_seed(seed)
                warnings.simplefilter("ignore")
                acqf = build_acquisition(
                    model,
                    self.objective,
                    self.maximize,
                    X_baseline,
                    X_pending,
                    kind=self.acquisition,
                    cost_exponent=self._exponent,
                    seed=seed,
                    gittins_lambda=self.gittins_lambda,
                    objectives=self.objectives,
                    Y_baseline=Y_baseline,
                    constraints=self.constraints,
                )
                fidelity = space.fidelity_indices
                choose = bool(fidelity) and self.acquisition in COST_AWARE
                grid = candidate_grid(space)
                points = ranked_points(acqf, space, grid, self.num_restarts, self.raw_samples)

                def tries():  # noqa: ANN202 - each optimum at its chosen fidelity, then the target
                    for chunk in in_growing_chunks(points):
                        X = torch.cat([x for x, _ in chunk])  # m x d, at the target
                        chosen = (
                            choose_fidelities(
                                model, self.objective, X, fidelity, slot_cost=slot_cost
                            )
                            if choose
                            else None
                        )
                        for i, (x, value) in enumerate(chunk):
                            v = value if math.isfinite(value) else None
                            top = to_canonical(space, x, canonical)[0]
                            if fidelity and top in seen:
                                continue  # run at the target: a shorter run adds nothing
                            if chosen is not None:
                                yield to_canonical(space, chosen[i].x, canonical)[0], v
                            yield top, v

                found = first_admitted(tries(), seen, admit)
                if found is None:  # every optimum seen (or too dear): search the fidelity axis
                    found = self._on_fidelity_grid(acqf, grid, seen, canonical, worth, seed)
                if found is not None:
                    return found
            logger.warning(
                "every optimum of the acquisition repeats an experiment already run or "
                "pending%s; proposing a random point instead",
                "" if admit is None else " or does not fit the budget left",
            )
        except Exception as exc:  # noqa: BLE001 - never crash a campaign on an optimiser error
            logger.warning(
                "optimising the %s acquisition failed (%s: %s); proposing a random point",
                self.acquisition,
                type(exc).__name__,
                exc,
            )
        x = self._random_new(step, seen, canonical, worth)
        return None if x is None else (x, None)

    def _on_fidelity_grid(
        self,
        acqf: object,
        grid: Tensor | None,
        seen: SeenPoints,
        canonical: Canonical | None,
        admit: Admit | None,
        seed: int,
    ) -> tuple[Tensor, float | None] | None:
        """The acquisition's best new (admitted) point of :func:`candidate_points`."""
        X = self.candidate_points(grid, canonical, seed)
        X = X[seen.new_mask(X)]
        if not len(X):
            return None
        X, vals = ranked(acqf, X)
        return first_admitted(
            (
                (x, float(v) if math.isfinite(float(v)) else None)
                for x, v in zip(X, vals, strict=True)
            ),
            seen,
            admit,
            chunk=256,
        )

    def candidate_points(
        self, grid: Tensor | None = None, canonical: Canonical | None = None, seed: int = 0
    ) -> Tensor:
        """Distinct canonical points covering the space, the fidelity axis included (``m x d``).

        The categorical grid (:func:`scheduler.discrete.candidate_grid`), or ``raw_samples``
        Sobol points where the space has none, at :data:`scheduler.new_points.FIDELITY_LEVELS`
        fidelity values, in the backend's canonical form. Kept for the current proposal
        round (:meth:`scheduler.agent.Agent.propose` starts each with none).
        """
        if grid is None:
            grid = candidate_grid(self.space)
        key = (canonical, seed if grid is None else None)  # the categorical grid is fixed
        cache = self._candidates
        if key not in cache:
            if grid is None:
                engine = torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=seed)
                grid = self.space.round_trip(engine.draw(self.raw_samples, dtype=torch.double))
            X = fidelity_grid(self.space, grid)
            cache[key] = unique_rows(to_canonical(self.space, X, canonical))
        return cache[key]
