"""Stopping rules: when a campaign ends before its budget is spent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sciwm.errors import SpecError


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
    """

    max_experiments: int
    patience: int = 0
    target: float | None = None
    maximize: bool = True

    def __post_init__(self) -> None:
        if self.max_experiments < 1:
            raise SpecError(
                f"stopping.max_experiments must be at least 1, got {self.max_experiments}"
            )
        if self.patience < 0:
            raise SpecError(f"stopping.patience must be >= 0 (0 is off), got {self.patience}")
        if self.target is not None and not math.isfinite(self.target):
            raise SpecError(f"stopping.target must be a finite number, got {self.target!r}")

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
