"""Acquisition functions of the BO agent, built on a world model through the contract.

``"ei"`` is botorch's ``qLogNoisyExpectedImprovement`` on the world model's outcome model.
``"ei_per_cost"`` divides that expected improvement by the expected cost, in log space:

    alpha(x) = log EI(x) - cost_exponent * log E[c(x)],   log E[c(x)] = mu(x) + s^2(x) / 2,

where ``mu`` and ``s^2`` are the posterior mean and variance of the world model's log-cost
model (a log-normal cost's mean; ``mu`` alone is the log of its median). With
``cost_exponent = 1`` this is log(EI / cost), the "expected improvement per unit cost" of
Snoek et al. (2012); smaller exponents trust the cost less. The expected cost charges a
candidate whose cost the world model knows poorly for the dear runs it may turn out to be: on
48 LCDB replay campaigns the benchmark does not report, dividing by the expected instead of
the median cost lowered the median cost to the target from 2.34x to 2.03x the oracle's
(better on 16, worse on 2).
``"gittins"`` is the Pandora's-box Gittins index of :mod:`scheduler.gittins` (cost-aware).

With several objectives the expected improvement is that of the hypervolume
(:mod:`scheduler.multiobjective`), divided by the predicted cost the same way; with outcome
constraints the log acquisition gains the log probability of feasibility
(:mod:`scheduler.constraints`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.objective import ScalarizedPosteriorTransform
from botorch.models.model import Model
from botorch.sampling import SobolQMCNormalSampler
from torch import Tensor

from scheduler.constraints import FeasibilityWeighted, OutcomeConstraint, feasibility
from scheduler.gittins import GittinsIndex, adaptive_lambda
from scheduler.multiobjective import Objectives, build_mo_acquisition
from sciwm.world_model import WorldModel

#: Acquisition names the agent understands.
ACQUISITIONS = ("ei_per_cost", "gittins", "ei", "random")

#: The model-based ones.
MODEL_ACQUISITIONS = ("ei_per_cost", "gittins", "ei")

#: Monte-Carlo samples of the qLogNEI estimate.
MC_SAMPLES = 128

#: Largest (and fixed-variant default) cost weight of the Gittins index.
GITTINS_LAMBDA_MAX = 0.1

#: Perturbed copies of each observed point among the adaptive weight's candidates, and
#: their standard deviation (unit cube).
LOCAL_COPIES, LOCAL_STD = 4, 0.02


def cooled_exponent(cost_exponent: float, budget_left: float) -> float:
    """The cost exponent with cost cooling: ``cost_exponent`` times the fraction of the
    budget left (clipped to [0, 1]).

    A cost-aware acquisition prefers cheap experiments; where the optimum lies in a dear
    region that preference can keep a campaign from it until the budget is gone. Cooling
    (the "EI-cool" schedule of Lee et al., 2020, "Cost-aware Bayesian optimization") keeps the
    full cost term while most of the budget is left, when cheap exploration pays, and lets
    it fade to plain expected improvement as the budget runs out.
    """
    return float(cost_exponent) * min(1.0, max(0.0, float(budget_left)))


class LogEIPerCost(AcquisitionFunction):
    """Log expected improvement per unit of predicted cost.

    Args:
        log_ei: A log-EI acquisition function (e.g. ``qLogNoisyExpectedImprovement``, or the
            log hypervolume improvement of several objectives); pending points are handed
            to it.
        log_cost_model: A botorch model of the natural log of the cost.
        cost_exponent: Weight of the cost term (1: EI per unit cost; 0: plain EI).
    """

    def __init__(
        self, log_ei: AcquisitionFunction, log_cost_model: Model, cost_exponent: float = 1.0
    ) -> None:
        super().__init__(model=log_ei.model)
        self.log_ei = log_ei
        self.log_cost_model = log_cost_model
        self.cost_exponent = float(cost_exponent)

    def forward(self, X: Tensor) -> Tensor:
        """Evaluate on candidate batches.

        Args:
            X: A ``b x q x d`` tensor of unit-cube points.

        Returns:
            A ``b`` tensor: ``log EI(X) - cost_exponent * log(expected cost of the batch)``,
            the batch's expected cost being the sum of its ``q`` points' expected costs.
        """
        log_ei = self.log_ei(X)
        return log_ei - self.cost_exponent * torch.logsumexp(self.log_expected_cost(X), dim=-1)

    def log_expected_cost(self, X: Tensor) -> Tensor:
        """``b x q``: log of each point's expected cost, ``mu + s^2 / 2`` of its log cost."""
        post = self.log_cost_model.posterior(X)
        return (post.mean + 0.5 * post.variance).squeeze(-1)

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        """Pass pending points (``m x d``) on to the log-EI term."""
        self.log_ei.set_X_pending(X_pending)


def build_acquisition(
    model: WorldModel,
    objective: str,
    maximize: bool,
    X_baseline: Tensor,
    X_pending: Tensor | None,
    kind: str = "ei_per_cost",
    cost_exponent: float = 1.0,
    seed: int = 0,
    gittins_lambda: float | None = None,
    *,
    objectives: Objectives | None = None,
    Y_baseline: Tensor | None = None,
    constraints: Sequence[OutcomeConstraint] = (),
) -> AcquisitionFunction:
    """The agent's acquisition function on a fitted world model.

    Args:
        model: A fitted world model.
        objective: Name of the outcome to optimise.
        maximize: Whether to maximise it (otherwise it is negated).
        X_baseline: A ``n x d`` tensor of observed unit-cube points (with constraints: the
            feasible ones; ``0 x d`` when none is feasible yet, and the acquisition is the
            log probability of feasibility alone).
        X_pending: A ``m x d`` tensor of points still running (or already chosen for this
            batch), or ``None``.
        kind: ``"ei_per_cost"``, ``"gittins"`` or ``"ei"``.
        cost_exponent: Weight of the cost term of ``"ei_per_cost"``.
        seed: Seed of the quasi-Monte-Carlo base samples.
        gittins_lambda: Unitless cost weight of ``"gittins"``; ``None`` sets it adaptively
            (see :func:`scheduler.gittins.adaptive_lambda`).
        objectives: Several objectives (then ``objective`` and ``maximize`` are ignored);
            ``None`` or a single one: the single-objective acquisitions.
        Y_baseline: A ``n x m`` tensor of the objectives observed at ``X_baseline`` (several
            objectives: for inferring the reference point).
        constraints: Outcome constraints, weighted in by their probability of feasibility.

    Returns:
        An acquisition function taking ``b x q x d`` tensors.

    Raises:
        ValueError: If ``kind`` is not a model-based acquisition.
    """
    if kind not in MODEL_ACQUISITIONS:
        raise ValueError(
            f"unknown model-based acquisition {kind!r}; use one of {', '.join(MODEL_ACQUISITIONS)}"
        )
    multi = objectives is not None and objectives.multi
    if (multi or constraints) and kind == "gittins":
        raise ValueError("the 'gittins' acquisition supports one unconstrained objective")
    if multi or constraints:
        base: AcquisitionFunction | None = None
        if X_baseline.shape[0] > 0:
            if multi:
                assert objectives is not None
                base = build_mo_acquisition(
                    model, objectives, X_baseline, Y_baseline, X_pending, seed=seed
                )
            else:
                base = _log_nei(model, objective, maximize, X_baseline, X_pending, seed)
        acqf: AcquisitionFunction
        if constraints:
            log_pf = feasibility(model, constraints)
            acqf = log_pf if base is None else FeasibilityWeighted(base, log_pf)
        else:
            assert base is not None
            acqf = base
        if kind == "ei":
            return acqf
        return LogEIPerCost(acqf, model.log_cost_model(), cost_exponent)
    if kind == "gittins":
        index = GittinsIndex(
            model.outcome_model(objective),
            model.log_cost_model(),
            X_baseline,
            gittins_lambda or GITTINS_LAMBDA_MAX,
            maximize=maximize,
            X_pending=X_pending,
        )
        if gittins_lambda is None:
            gen = torch.Generator().manual_seed(seed)
            local = X_baseline.repeat(LOCAL_COPIES, 1)
            local = local + LOCAL_STD * torch.randn(local.shape, generator=gen, dtype=local.dtype)
            index.lam = adaptive_lambda(
                index, GITTINS_LAMBDA_MAX, seed=seed, X_extra=local.clamp(0.0, 1.0)
            )
        return index
    log_ei = _log_nei(model, objective, maximize, X_baseline, X_pending, seed)
    if kind == "ei":
        return log_ei
    return LogEIPerCost(log_ei, model.log_cost_model(), cost_exponent)


def _log_nei(
    model: WorldModel,
    objective: str,
    maximize: bool,
    X_baseline: Tensor,
    X_pending: Tensor | None,
    seed: int,
) -> AcquisitionFunction:
    """``qLogNoisyExpectedImprovement`` of one objective (negated when minimised)."""
    transform = None
    if not maximize:
        transform = ScalarizedPosteriorTransform(weights=torch.tensor([-1.0], dtype=torch.double))
    return qLogNoisyExpectedImprovement(
        model=model.outcome_model(objective),
        X_baseline=X_baseline,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([MC_SAMPLES]), seed=seed),
        posterior_transform=transform,
        X_pending=X_pending,
        cache_root=False,  # the contract's posterior is not a GPyTorch model
    )
