"""Outcome constraints: proposals weighted by the world model's probability of feasibility.

A constraint ``outcome <= bound`` (or ``>=``) holds with probability

    PF(x) = Phi((bound - mu(x)) / sigma(x))       (``>=``: Phi((mu(x) - bound) / sigma(x)))

under the world model's posterior of that outcome (mean ``mu``, std ``sigma``). The agent's
log acquisition gains ``sum_c log PF_c(x)`` (constrained expected improvement, Gardner et al.
2014, in log space), with its improvement measured against the best *feasible* result; until a
feasible result exists the acquisition is ``log PF`` alone (find a feasible point first), still
per unit cost for a cost-aware acquisition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from torch import Tensor

from sciwm.errors import SpecError

#: Smallest posterior std used in the feasibility probability (avoids division by zero).
MIN_STD = 1e-9


@dataclass(frozen=True)
class OutcomeConstraint:
    """``outcome op bound`` with ``op`` one of ``"<="`` and ``">="``.

    Raises:
        SpecError: If ``op`` is neither.
    """

    outcome: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise SpecError(
                f"constraint on {self.outcome!r}: op must be '<=' or '>=', got {self.op!r}"
            )

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint."""
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.outcome} {self.op} {self.bound:g}"


class LogProbabilityOfFeasibility(AcquisitionFunction):
    """Log probability that every constraint holds at every point of a batch.

    Args:
        models: One botorch model per constraint (the world model's outcome model).
        constraints: The constraints, aligned with ``models``.
    """

    def __init__(self, models: Sequence[Model], constraints: Sequence[OutcomeConstraint]) -> None:
        if len(models) != len(constraints) or not models:
            raise ValueError("need one model per constraint, and at least one constraint")
        super().__init__(model=models[0])
        self.models = list(models)
        self.constraints = list(constraints)

    def forward(self, X: Tensor) -> Tensor:
        """Evaluate on candidate batches.

        Args:
            X: A ``b x q x d`` tensor of unit-cube points.

        Returns:
            A ``b`` tensor: ``sum over constraints and the q points of log PF``.
        """
        total = torch.zeros(X.shape[:-2], dtype=X.dtype, device=X.device)
        for model, c in zip(self.models, self.constraints, strict=True):
            post = model.posterior(X)
            mean = post.mean.squeeze(-1)  # b x q
            std = post.variance.clamp_min(MIN_STD**2).sqrt().squeeze(-1)
            z = (c.bound - mean) / std if c.op == "<=" else (mean - c.bound) / std
            total = total + torch.special.log_ndtr(z).sum(dim=-1)
        return total

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        """Pending points do not change the probability of feasibility."""


class FeasibilityWeighted(AcquisitionFunction):
    """A log acquisition plus the log probability of feasibility: ``log a(x) + log PF(x)``.

    Args:
        log_acqf: A log-scale acquisition (log EI, log EHVI); pending points go to it.
        log_pf: The constraints' :class:`LogProbabilityOfFeasibility`.
    """

    def __init__(self, log_acqf: AcquisitionFunction, log_pf: LogProbabilityOfFeasibility) -> None:
        super().__init__(model=log_acqf.model)
        self.log_acqf = log_acqf
        self.log_pf = log_pf

    def forward(self, X: Tensor) -> Tensor:
        """``b x q x d`` points -> ``b`` values of ``log a(X) + log PF(X)``."""
        return self.log_acqf(X) + self.log_pf(X)

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        """Pass pending points (``m x d``) on to the log acquisition."""
        self.log_acqf.set_X_pending(X_pending)


def feasibility(
    model_of: object, constraints: Sequence[OutcomeConstraint]
) -> LogProbabilityOfFeasibility:
    """The :class:`LogProbabilityOfFeasibility` of ``constraints`` on a world model.

    Args:
        model_of: A world model (its ``outcome_model(name)`` gives each constraint's model).
        constraints: At least one constraint.
    """
    return LogProbabilityOfFeasibility(
        [model_of.outcome_model(c.outcome) for c in constraints],  # type: ignore[attr-defined]
        constraints,
    )
