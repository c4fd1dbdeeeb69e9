"""Stopping rules: when a campaign ends before its budget is spent.

Besides the experiment cap, a target and patience, a campaign may stop once nothing is worth
its price: :func:`expected_gain_per_cost` values each proposal round's best candidate as its
expected improvement of the objective (in the objective's units) per unit of predicted cost,
and :meth:`StoppingRule.check_gain` stops when that stays below ``min_gain_per_cost`` for
``gain_rounds`` rounds in a row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from scheduler.gate import Candidate
from sciwm.errors import SpecError, WorldModelError
from sciwm.space import SearchSpace
from sciwm.world_model import WorldModel

logger = logging.getLogger(__name__)

#: Default number of consecutive rounds below ``min_gain_per_cost`` that stop a campaign.
DEFAULT_GAIN_ROUNDS = 3


@dataclass(frozen=True)
class StoppingRule:
    """When to stop proposing experiments.

    Attributes:
        max_experiments: Stop once this many experiments have been run (finished or failed).
        patience: Stop after this many consecutive results that do not improve on the best
            so far; 0 switches the rule off.
        target: Stop once the best objective value reaches this value (>= when maximising,
            <= when minimising); ``None`` switches the rule off.
        maximize: Direction of the objective.
        min_gain_per_cost: Stop once the best candidate of ``gain_rounds`` consecutive
            proposal rounds is expected to improve the objective by less than this per unit
            of predicted cost (objective units per cost unit); ``None`` switches it off.
        gain_rounds: Consecutive rounds below ``min_gain_per_cost`` that stop the campaign.
    """

    max_experiments: int
    patience: int = 0
    target: float | None = None
    maximize: bool = True
    min_gain_per_cost: float | None = None
    gain_rounds: int = DEFAULT_GAIN_ROUNDS

    def __post_init__(self) -> None:
        if self.max_experiments < 1:
            raise SpecError(
                f"stopping.max_experiments must be at least 1, got {self.max_experiments}"
            )
        if self.patience < 0:
            raise SpecError(f"stopping.patience must be >= 0 (0 is off), got {self.patience}")
        if self.target is not None and not math.isfinite(self.target):
            raise SpecError(f"stopping.target must be a finite number, got {self.target!r}")
        g = self.min_gain_per_cost
        if g is not None and not (math.isfinite(g) and g >= 0):
            raise SpecError(f"stopping.min_gain_per_cost must be a number >= 0, got {g!r}")
        if self.gain_rounds < 1:
            raise SpecError(f"stopping.gain_rounds must be at least 1, got {self.gain_rounds}")

    def check(self, objective_values_in_order: Sequence[float], n_experiments: int) -> str | None:
        """Whether to stop now.

        Args:
            objective_values_in_order: Objective values of the completed experiments, in the
                order their results arrived (failed ones left out).
            n_experiments: Experiments run so far, failed ones included.

        Returns:
            A human-readable reason to stop, or ``None`` to go on.
        """
        if n_experiments >= self.max_experiments:
            return f"reached the maximum of {self.max_experiments} experiments"
        values = [float(v) for v in objective_values_in_order if math.isfinite(float(v))]
        if not values:
            return None
        sign = 1.0 if self.maximize else -1.0
        best = max(sign * v for v in values)
        if self.target is not None and best >= sign * self.target:
            word = ">=" if self.maximize else "<="
            return f"target reached: best objective {sign * best:.6g} {word} {self.target:.6g}"
        if self.patience > 0 and len(values) > self.patience:
            # Index of the (first) best value; everything after it failed to improve.
            best_at = max(range(len(values)), key=lambda i: (sign * values[i], -i))
            since = len(values) - 1 - best_at
            if since >= self.patience:
                return (
                    f"no improvement in the last {since} results (patience {self.patience}); "
                    f"best objective {sign * best:.6g}"
                )
        return None

    def check_gain(self, gains: Sequence[float | None]) -> str | None:
        """Whether the expected gain per unit of cost has stayed too low for too long.

        Args:
            gains: Per proposal round, in order, the best candidate's
                :func:`expected_gain_per_cost` (``None``: a round without a fitted world
                model, e.g. the initial design, which breaks a run of low rounds).

        Returns:
            A human-readable reason to stop, or ``None`` to go on (always ``None`` when
            ``min_gain_per_cost`` is off).
        """
        if self.min_gain_per_cost is None or len(gains) < self.gain_rounds:
            return None
        last = list(gains)[-self.gain_rounds :]
        if any(g is None or not g < self.min_gain_per_cost for g in last):
            return None
        worst = max(float(g) for g in last if g is not None)
        return (
            f"expected gain per unit cost below {self.min_gain_per_cost:.3g} for "
            f"{self.gain_rounds} rounds (best of the last rounds {worst:.3g})"
        )


def expected_gain_per_cost(
    model: WorldModel, objective: str, maximize: bool, X: Tensor, best: float
) -> Tensor:
    """Expected improvement on ``best`` per unit of predicted cost, at unit-cube points.

    The improvement is the closed-form expected improvement of the world model's latent
    posterior of the objective over the best value observed so far, in the objective's units;
    the cost is the predicted median cost, ``exp(E[log c(x)])`` (``"ei_per_cost"`` divides
    by the expected cost, ``exp(E[log c(x)] + Var[log c(x)] / 2)``).

    Args:
        model: A fitted world model.
        objective: The objective's name.
        maximize: Whether it is maximised.
        X: A ``n x d`` tensor of unit-cube points.
        best: Best objective value observed so far.

    Returns:
        A ``n`` tensor (objective units per cost unit, >= 0).
    """
    with torch.no_grad():
        post = model.posterior(X.unsqueeze(-2), objective)
        mean = post.mean.reshape(-1)
        std = post.variance.reshape(-1).clamp_min(1e-18).sqrt()
        log_cost = model.log_cost_posterior(X.unsqueeze(-2)).mean.reshape(-1)
    gain = (mean - best) if maximize else (best - mean)
    z = gain / std
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    ei = gain * normal.cdf(z) + std * normal.log_prob(z).exp()
    return ei.clamp_min(0.0) / log_cost.exp()


def best_gain_per_cost(
    model: WorldModel | None,
    objective: str,
    maximize: bool,
    space: SearchSpace,
    candidates: Sequence[Candidate],
    values: Sequence[float],
) -> float | None:
    """The best :func:`expected_gain_per_cost` of one proposal round's candidates.

    Args:
        model: The fitted world model (``None``: none yet).
        objective: The objective's name.
        maximize: Whether it is maximised.
        space: The search space.
        candidates: The round's candidates.
        values: Objective values of the campaign's own completed experiments.

    Returns:
        The value, or ``None`` for a round the world model did not steer (the initial
        design, a restart's fresh design, the ``random`` acquisition), before any result, or
        when the world model cannot say.
    """
    steered = any(c.acquisition_value is not None for c in candidates)
    finite = [float(v) for v in values if math.isfinite(float(v))]
    if model is None or not steered or not finite:
        return None
    X = space.encode([c.parameters for c in candidates])
    best = max(finite) if maximize else min(finite)
    try:
        return float(expected_gain_per_cost(model, objective, maximize, X, best).max())
    except WorldModelError as exc:
        logger.warning("expected gain per cost not computed: %s", exc)
        return None
