"""The BO agent: proposes batches of experiments from a world model's posterior.

The agent is stateless between calls: everything it needs (finished experiments, their
observations, the parameters of experiments still running) is passed to :meth:`Agent.propose`,
so a campaign resumed from the record store continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence

from torch import Tensor

from scheduler.acquisition import ACQUISITIONS, cooled_exponent
from scheduler.agent_optimize import COST_AWARE, DEFAULT_INITIAL_EXPERIMENTS, AgentOptimizer
from scheduler.constraints import OutcomeConstraint
from scheduler.discrete import Canonical, canonical_params
from scheduler.gate import Candidate
from scheduler.joint_batch import DEFAULT_JOINT_BATCH_ABOVE
from scheduler.multiobjective import Objectives
from scheduler.new_points import SeenPoints, to_canonical
from scheduler.restart import DEFAULT_RESTART_AFTER, Restarts
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import DEFAULT_LEVEL
from sciwm.space import SearchSpace, Value
from sciwm.world_model import WorldModel

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINE_MAX",
    "COST_AWARE",
    "DEFAULT_COST_EXPONENT",
    "DEFAULT_INITIAL_EXPERIMENTS",
    "DEFAULT_RESTART_AFTER",
    "Agent",
    "default_initial_experiments",
]

#: Default weight of the cost term of ``"ei_per_cost"``: half of "EI per unit cost". The
#: full weight gets caught more often in cheap local optima (Hartmann6 in the campaign bench,
#: measured on tuning seeds 1004-1007: 0.5 reached the target for less on 3 of 4 seeds).
DEFAULT_COST_EXPONENT = 0.5

#: Most completed experiments the acquisition improves on: past this many, the best ones by
#: their observed objective (the noisy-EI baseline's cost grows with the square of its size;
#: points far below the best have no chance of being the incumbent).
BASELINE_MAX = 256


def default_initial_experiments(model: WorldModel | None) -> int:
    """Size of the initial design when the campaign file does not set one.

    A world model that predicts before any real result (pretrained, physics-based: its
    ``can_fit([], [])`` is true) steers from the first proposal, so it gets no Sobol design;
    any other gets :data:`DEFAULT_INITIAL_EXPERIMENTS`.
    """
    if model is not None and model.can_fit([], []):
        return 0
    return DEFAULT_INITIAL_EXPERIMENTS


class Agent(AgentOptimizer, Restarts):
    """Bayesian-optimisation agent over a search space.

    Until ``initial_experiments`` experiments have completed (or while there is no fitted
    world model) it proposes a scrambled Sobol design seeded by ``seed``; the sequence is
    fast-forwarded past every experiment already proposed, so a resumed campaign continues
    it. Then it maximises the acquisition by sequential greedy batches, each chosen point
    joining the pending ones before the next is chosen.

    With fidelity parameters (simulation length, epochs), the acquisition is evaluated at the
    target (highest) fidelity and improves on the results measured there (a low-fidelity
    result informs the world model, but is no deliverable); a cost-aware acquisition then
    runs the chosen point at the fidelity that buys the most information about its
    target-fidelity outcome per unit of predicted cost
    (:func:`scheduler.fidelity.choose_fidelities`), a cost-blind one at the target fidelity.
    A point already run (or running) at the target fidelity is not proposed at a lower one:
    its outcome there is known, so a shorter run tells the campaign nothing it needs.

    Args:
        space: The search space.
        objective: Name of the outcome to optimise.
        maximize: Whether to maximise it.
        acquisition: ``"ei_per_cost"`` (log expected improvement minus predicted log cost),
            ``"gittins"`` (Pandora's-box Gittins index with the predicted cost), ``"ei"``
            (log expected improvement, cost-blind) or ``"random"`` (uniform).
        initial_experiments: Completed experiments of the Sobol design before the model takes
            over (>= 0; 0: the model steers as soon as it is fitted). The campaign loop
            passes :func:`default_initial_experiments` when the campaign file sets none.
        seed: Seed of the initial design, the random fallback and the optimiser.
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples to pick the restarts from.
        cost_exponent: Weight of the cost term of ``"ei_per_cost"`` (1: EI per unit cost;
            default :data:`DEFAULT_COST_EXPONENT`).
        gittins_lambda: Unitless cost weight of ``"gittins"`` (smaller explores more);
            ``None`` (default) sets it at each step (stateless PBGI-D).
        restart_after: Completed experiments without a real improvement after which the
            search restarts from a fresh Sobol design, with a world model fitted on the new
            epoch's results only (see :mod:`scheduler.restart`); 0: never (default
            :data:`DEFAULT_RESTART_AFTER`; the campaign loop passes
            :func:`scheduler.restart.default_restart_after` when the campaign file sets
            none). Restarts watch a single objective; with several objectives they are off.
        objectives: Several objectives (a Pareto front, :mod:`scheduler.multiobjective`);
            then ``objective`` and ``maximize`` name the first. ``None``: one objective.
        constraints: Outcome constraints (:mod:`scheduler.constraints`): proposals are
            weighted by their probability of feasibility, improvement is measured against
            the feasible results.
        joint_batch_above: Completed results from which a batch of several points is
            optimised jointly in one run (:mod:`scheduler.joint_batch`) instead of point by
            point (single unconstrained objective, ``ei`` / ``ei_per_cost``, no fidelity
            parameter); 0: never (default :data:`DEFAULT_JOINT_BATCH_ABOVE`).

    Raises:
        SpecError: If a setting is out of range.
    """

    def __init__(
        self,
        space: SearchSpace,
        objective: str,
        maximize: bool,
        *,
        acquisition: str = "ei_per_cost",
        initial_experiments: int = DEFAULT_INITIAL_EXPERIMENTS,
        seed: int = 0,
        num_restarts: int = 8,
        raw_samples: int = 256,
        cost_exponent: float = DEFAULT_COST_EXPONENT,
        gittins_lambda: float | None = None,
        restart_after: int = DEFAULT_RESTART_AFTER,
        objectives: Objectives | None = None,
        constraints: Sequence[OutcomeConstraint] = (),
        joint_batch_above: int = DEFAULT_JOINT_BATCH_ABOVE,
    ) -> None:
        if joint_batch_above < 0:
            raise SpecError(f"joint_batch_above must be >= 0 (0: never), got {joint_batch_above}")
        if acquisition not in ACQUISITIONS:
            raise SpecError(
                f"unknown acquisition {acquisition!r}; use one of {', '.join(ACQUISITIONS)}"
            )
        if initial_experiments < 0:
            raise SpecError(f"initial_experiments must be >= 0, got {initial_experiments}")
        if num_restarts < 1 or raw_samples < num_restarts:
            raise SpecError(
                f"need num_restarts >= 1 and raw_samples >= num_restarts, got "
                f"{num_restarts} and {raw_samples}"
            )
        if not (math.isfinite(cost_exponent) and cost_exponent >= 0):
            raise SpecError(f"cost_exponent must be a number >= 0, got {cost_exponent!r}")
        if gittins_lambda is not None and not (
            math.isfinite(gittins_lambda) and gittins_lambda > 0
        ):
            raise SpecError(f"gittins_lambda must be a number > 0, got {gittins_lambda!r}")
        if restart_after < 0:
            raise SpecError(f"restart_after must be >= 0 (0: never), got {restart_after}")
        if objectives is not None and not objectives.multi:
            objectives = None
        if (objectives is not None or constraints) and acquisition == "gittins":
            raise SpecError(
                "the 'gittins' acquisition supports one unconstrained objective; use "
                "'ei_per_cost' or 'ei'"
            )
        self.space = space
        self.objective = objective
        self.maximize = maximize
        self.acquisition = acquisition
        self.initial_experiments = int(initial_experiments)
        self.seed = int(seed)
        self.num_restarts = int(num_restarts)
        self.raw_samples = int(raw_samples)
        self.cost_exponent = float(cost_exponent)
        self.gittins_lambda = None if gittins_lambda is None else float(gittins_lambda)
        self.restart_after = 0 if objectives is not None else int(restart_after)
        self.objectives = objectives
        self.constraints = tuple(constraints)
        self.joint_batch_above = int(joint_batch_above)
        #: Outcomes a completed result needs for the acquisition's baseline.
        self.required = list(objectives.names) if objectives is not None else [objective]
        #: The current restart epoch's first experiment, its world model and the results
        #: (ids, statuses) that model was fitted on.
        self._epoch_copy: tuple[int, WorldModel, tuple[object, ...]] | None = None
        #: :meth:`candidate_points` of the current proposal round, by canonical form and seed.
        self._candidates: dict[object, Tensor] = {}
        #: The cost exponent of the current proposal round (``cooled_exponent``).
        self._exponent = self.cost_exponent

    # -- public -------------------------------------------------------------------------
    def propose(
        self,
        model: WorldModel | None,
        experiments: Sequence[Experiment],
        observations: Sequence[Observation],
        pending: Sequence[Mapping[str, Value]],
        n: int,
        level: float = DEFAULT_LEVEL,
        slot_cost: float = 0.0,
        *,
        answered: Sequence[Mapping[str, Value]] = (),
        canonical: Canonical | None = None,
        admit: Callable[[Candidate], bool] | None = None,
        cost_weight: float = 1.0,
    ) -> list[Candidate]:
        """Propose up to ``n`` experiments.

        Args:
            model: The world model, fitted on ``observations`` (or ``None``).
            experiments: Finished experiments, aligned with ``observations``.
            observations: Their results (failures included).
            pending: Parameters of experiments still running.
            n: How many to propose.
            level: Coverage of the intervals in the candidates' predictions.
            slot_cost: Price of one experiment slot in cost units (the budget left per
                experiment the campaign may still run), weighed into the fidelity choice.
            answered: Parameters of questions answered virtually (by the world model, not
                run): never proposed again, not counted as results.
            canonical: What the backend would really run for given parameters; a proposal
                that maps to an experiment run, pending or answered is not made, and
                proposals are returned in that form.
            admit: Whether a candidate (with the fitted model's prediction, ``None``
                without one) may be proposed, e.g. the dispatch gate's "it fits the budget
                left" (:meth:`scheduler.gate.DispatchGate.fits`): the best admitted points
                are proposed instead of the acquisition's overall best.
            cost_weight: Factor in [0, 1] on ``cost_exponent`` for this round (the loop
                passes the fraction of the budget left with ``[scheduler] cost_cooling``;
                see :func:`scheduler.acquisition.cooled_exponent`).

        Returns:
            Up to ``n`` candidates, best first, each with the model's prediction when there
            is a fitted model; fewer when no other point is a new experiment (or admitted).
        """
        if n < 1:
            return []
        if len(experiments) != len(observations):
            raise ValueError("experiments and observations must be aligned (same length)")
        self._candidates = {}  # candidate_points of this round
        self._exponent = cooled_exponent(self.cost_exponent, cost_weight)
        n_prior = len(experiments) + len(pending)
        seen = self._seen([*experiments, *answered, *pending], canonical)  # never again
        full = model  # fitted on everything: it predicts each candidate for the record
        predictor = full if full is not None and full.is_fitted else None
        admit_X = None if admit is None else self._admit_points(admit, predictor, level)
        start = self._epoch_start(observations) if self.acquisition != "random" else 0
        if start and start == len(experiments):  # the epoch ended with the last result
            logger.info(
                "no real improvement in the last %d results: restarting the search from a "
                "fresh design (every result stays recorded)",
                self.restart_after,
            )
        if start:  # a restarted search: its own design, then a model of its own results
            experiments, observations = experiments[start:], observations[start:]
            model = self._epoch_model(model, experiments, observations, start)
        fitted = model is not None and model.is_fitted
        completed = [
            e
            for e, o in zip(experiments, observations, strict=True)
            if o.status is Status.COMPLETED
            and all(k in o.outcomes and math.isfinite(float(o.outcomes[k])) for k in self.required)
        ]
        if self.acquisition == "random" or not fitted or len(completed) < self.initial_experiments:
            design = self._random if self.acquisition == "random" else self._sobol
            X = self._new_design(design(n_prior, n), seen, n_prior, canonical, admit_X)
            values: list[float | None] = [None] * len(X)
        else:
            assert model is not None
            n_completed = len(completed)
            if self.objectives is None and n_completed > BASELINE_MAX:
                completed = self._best(completed, experiments, observations)
            results = {e.id: o for e, o in zip(experiments, observations, strict=True)}
            X_pending = self.space.encode(list(pending)).reshape(-1, self.space.dim)
            X, values = self._optimize(
                model,
                completed,
                seen,
                X_pending,
                n,
                n_prior,
                slot_cost,
                results,
                n_completed,
                canonical,
                admit_X,
            )
        if len(X) < n:
            logger.info(
                "%d of %d proposals made: no other point is a new experiment%s",
                len(X),
                n,
                "" if admit is None else " that the budget left admits",
            )
        params = self.space.decode(X) if len(X) else []
        if canonical is not None:
            params = [canonical_params(self.space, p, canonical) for p in params]
        predictions = predictor.predict(params, level) if predictor and params else []
        predictions = predictions or [None] * len(params)
        return [
            Candidate(parameters=p, prediction=pr, acquisition_value=v)
            for p, pr, v in zip(params, predictions, values, strict=True)
        ]

    def cheapest_new(
        self,
        model: WorldModel,
        seen: Sequence[Mapping[str, Value] | Experiment],
        *,
        canonical: Canonical | None = None,
        level: float = DEFAULT_LEVEL,
    ) -> Candidate | None:
        """The new experiment of lowest predicted mean cost among the agent's candidate
        points (the categorical grid or a Sobol sample, over the fidelity axis).

        Args:
            model: A fitted world model.
            seen: Experiments (or parameters) run, pending or answered.
            canonical: What the backend would really run (as in :meth:`propose`).
            level: Coverage of the prediction's intervals.

        Returns:
            The cheapest candidate with its prediction, or ``None`` when every candidate
            point was seen or the model is not fitted.
        """
        if not model.is_fitted:
            return None
        X = self.candidate_points(canonical=canonical, seed=self.seed)
        X = X[self._seen(seen, canonical).new_mask(X)]
        if not len(X):
            return None
        params = self.space.decode(X)
        preds = model.predict(params, level)
        costs = [float(p.cost.mean) for p in preds]
        best = min(
            range(len(costs)), key=lambda i: costs[i] if math.isfinite(costs[i]) else math.inf
        )
        return Candidate(parameters=params[best], prediction=preds[best])

    def _seen(
        self, seen: Sequence[Mapping[str, Value] | Experiment], canonical: Canonical | None
    ) -> SeenPoints:
        """Experiments (or parameters) as encoded canonical points."""
        rows = [getattr(e, "parameters", e) for e in seen]
        X = self.space.encode(rows).reshape(-1, self.space.dim)  # valid values already
        return SeenPoints(X if canonical is None else to_canonical(self.space, X, canonical))

    def _admit_points(
        self, admit: Callable[[Candidate], bool], predictor: WorldModel | None, level: float
    ) -> Callable[[Tensor], list[bool]]:
        """``admit`` on encoded points (``n x d``), each with ``predictor``'s prediction."""

        def admit_points(X: Tensor) -> list[bool]:
            params = self.space.decode(X)
            preds = predictor.predict(params, level) if predictor else [None] * len(params)
            return [admit(Candidate(p, pr)) for p, pr in zip(params, preds, strict=True)]

        return admit_points

    def _best(
        self,
        completed: Sequence[Experiment],
        experiments: Sequence[Experiment],
        observations: Sequence[Observation],
    ) -> list[Experiment]:
        """The :data:`BASELINE_MAX` of ``completed`` with the best objective values."""
        ids = {c.id for c in completed}
        value = {
            e.id: float(o.outcomes[self.objective])
            for e, o in zip(experiments, observations, strict=True)
            if e.id in ids
        }
        sign = -1.0 if self.maximize else 1.0
        return sorted(completed, key=lambda e: sign * value[e.id])[:BASELINE_MAX]
