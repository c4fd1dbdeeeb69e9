"""How the agent picks points: its designs and the optimisation of its acquisition.

:class:`AgentOptimizer` is the half of :class:`scheduler.agent.Agent` that turns a fitted
world model into points of the unit cube: the seeded Sobol and random designs, and the
acquisition's optimisation, point by point (sequential greedy, each chosen point fantasised
as pending before the next) or jointly for a large enough batch. A point that repeats an
experiment run, pending or answered, in the form the backend would run it, is never chosen.
It holds no state of its own: it reads the settings :class:`~scheduler.agent.Agent` sets.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from scheduler.acquisition import build_acquisition
from scheduler.constraints import OutcomeConstraint
from scheduler.discrete import (
    Canonical,
    candidate_grid,
    canonical_params,
    first_new,
    is_duplicate,
    ranked_points,
)
from scheduler.fidelity import choose_fidelity, project_to_target
from scheduler.joint_batch import JOINT_ACQUISITIONS, optimize_joint
from scheduler.multiobjective import Objectives
from sciwm.experiment import Experiment, Observation
from sciwm.pareto import as_tensor, feasible
from sciwm.space import SearchSpace, Value
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
    ``seed``, ``num_restarts``, ``raw_samples``, ``cost_exponent``, ``gittins_lambda``,
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
    gittins_lambda: float | None
    objectives: Objectives | None
    constraints: tuple[OutcomeConstraint, ...]
    joint_batch_above: int

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

    # -- Bayesian optimisation ----------------------------------------------------------
    def _optimize(
        self,
        model: WorldModel,
        completed: Sequence[Experiment],
        experiments: Sequence[Experiment | Mapping[str, Value]],
        pending: Sequence[Mapping[str, Value]],
        n: int,
        n_prior: int,
        slot_cost: float = 0.0,
        results: Mapping[str, Observation] | None = None,
        n_completed: int | None = None,
        canonical: Canonical | None = None,
    ) -> tuple[Tensor, list[float | None]]:
        """A batch of ``n`` points (``n x d``) and their acquisition values: sequential greedy,
        or joint past ``joint_batch_above`` of ``n_completed`` (default: ``len(completed)``).

        ``experiments`` (run, or parameters answered virtually) and ``pending`` are never
        proposed again, in the backend's ``canonical`` form; pending ones are fantasised.
        """
        space = self.space
        Y_base = None
        # the acquisition values the target fidelity: what low-fidelity results say about it
        if completed:
            outcomes = [(results or {})[e.id].outcomes for e in completed]
            if self.constraints:  # improve on the feasible results (none: feasibility alone)
                keep = [i for i, o in enumerate(outcomes) if feasible(o, self.constraints)]
                completed = [completed[i] for i in keep]
                outcomes = [outcomes[i] for i in keep]
            X_base = space.encode([e.parameters for e in completed]).reshape(-1, space.dim)
            if self.objectives is not None:
                Y_base = as_tensor(
                    [[o[k] for k in self.objectives.names] for o in outcomes],
                    len(self.objectives.names),
                )
        else:  # no result yet: improve on what the model predicts for the design it replaces
            X_base = self._sobol(0, DEFAULT_INITIAL_EXPERIMENTS)
        X_baseline = project_to_target(X_base, space.fidelity_indices)
        X_pending = (
            space.encode(list(pending)) if pending else space.encode([]).reshape(0, space.dim)
        )
        seen = [getattr(e, "parameters", e) for e in experiments] + list(pending)
        if canonical is not None:
            seen = [canonical_params(space, p, canonical) for p in seen]
        X_seen = space.encode(seen).reshape(-1, space.dim)
        if self._joint(n, len(completed) if n_completed is None else n_completed):
            joint = self._optimize_joint(model, X_baseline, X_pending, X_seen, n, n_prior)
            if joint is not None:
                return joint
        chosen: list[Tensor] = []
        values: list[float | None] = []
        for i in range(n):
            X_pend = torch.cat([X_pending, *[c.unsqueeze(0) for c in chosen]])
            x, value = self._optimize_one(
                model,
                X_baseline,
                X_pend if len(X_pend) else None,
                X_seen,
                n_prior + i,
                slot_cost,
                Y_base,
                canonical,
            )
            chosen.append(x)
            values.append(value)
            X_seen = torch.cat([X_seen, x.unsqueeze(0)])
        return torch.stack(chosen), values

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
        X_seen: Tensor,
        n: int,
        n_prior: int,
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
                cost_exponent=self.cost_exponent,
                seed=seed,
            )
            X, values = optimize_joint(
                acqf, self.space, n, self.num_restarts, self.raw_samples, seed
            )
        except Exception as exc:  # noqa: BLE001 - the point-by-point path still works
            logger.warning("joint batch optimisation failed (%s); going point by point", exc)
            return None
        for i in range(n):  # a repeat of anything run, pending or earlier in the batch
            if is_duplicate(X[i], torch.cat([X_seen, X[:i]])):
                X[i], values[i] = self._random(n_prior + i, 1, salt=101)[0], None
        return X, values

    def _optimize_one(
        self,
        model: WorldModel,
        X_baseline: Tensor,
        X_pending: Tensor | None,
        X_seen: Tensor,
        step: int,
        slot_cost: float = 0.0,
        Y_baseline: Tensor | None = None,
        canonical: Canonical | None = None,
    ) -> tuple[Tensor, float | None]:
        """Best non-duplicate point (``d``) of the acquisition, or a random one if that fails."""
        seed = self.seed * 1_000_003 + step
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
                    cost_exponent=self.cost_exponent,
                    seed=seed,
                    gittins_lambda=self.gittins_lambda,
                    objectives=self.objectives,
                    Y_baseline=Y_baseline,
                    constraints=self.constraints,
                )
                fidelity = self.space.fidelity_indices
                at_fidelity = None
                if fidelity and self.acquisition in COST_AWARE:

                    def at_fidelity(x: Tensor) -> Tensor:
                        return choose_fidelity(
                            model, self.objective, x, fidelity, slot_cost=slot_cost
                        ).x

                grid = candidate_grid(self.space)
                points = ranked_points(acqf, self.space, grid, self.num_restarts, self.raw_samples)
                found = first_new(points, X_seen, self.space, at_fidelity, canonical)
                if found is not None:
                    return found
            logger.warning(
                "every optimum of the acquisition repeats an experiment already run or "
                "pending; proposing a random point instead"
            )
        except Exception as exc:  # noqa: BLE001 - never crash a campaign on an optimiser error
            logger.warning(
                "optimising the %s acquisition failed (%s: %s); proposing a random point",
                self.acquisition,
                type(exc).__name__,
                exc,
            )
        for salt in range(1, 101):
            x = self._random(step, 1, salt=salt)[0]
            if not is_duplicate(x, X_seen):
                return x, None
        return x, None
