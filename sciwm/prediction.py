"""Predictions of a world model: mean, standard deviation and an interval at a stated level."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

#: Coverage of predictive intervals where none is asked for: the campaign's
#: ``scheduler.interval_level``, ``sciwm predict --level`` and ``WorldModel.predict``.
DEFAULT_LEVEL = 0.9


@dataclass(frozen=True)
class Estimate:
    """A predictive distribution summary for one quantity.

    Attributes:
        mean: Predictive mean.
        std: Predictive standard deviation (>= 0).
        lower: Lower end of the central interval at ``level``.
        upper: Upper end of the central interval at ``level``.
        level: Coverage the interval is meant to have, e.g. 0.9.
    """

    mean: float
    std: float
    lower: float
    upper: float
    level: float

    @classmethod
    def gaussian(cls, mean: float, std: float, level: float = DEFAULT_LEVEL) -> Estimate:
        """Summary of a normal distribution ``N(mean, std^2)``.

        Raises:
            ValueError: If ``std`` is negative or ``level`` is not in (0, 1).
        """
        mean, std = float(mean), float(std)
        z = _z(level)
        if std < 0:
            raise ValueError(f"a standard deviation cannot be negative, got {std}")
        return cls(mean, std, mean - z * std, mean + z * std, float(level))

    @classmethod
    def lognormal(cls, log_mean: float, log_std: float, level: float = DEFAULT_LEVEL) -> Estimate:
        """Summary of ``exp(N(log_mean, log_std^2))``: used for costs, which are positive.

        The interval is the exponentiated normal interval; mean and std are the log-normal's.

        Raises:
            ValueError: If ``log_std`` is negative or ``level`` is not in (0, 1).
        """
        log_mean, log_std = float(log_mean), float(log_std)
        z = _z(level)
        if log_std < 0:
            raise ValueError(f"a standard deviation cannot be negative, got {log_std}")
        var = log_std**2
        mean = math.exp(log_mean + var / 2)
        std = math.sqrt(max(0.0, (math.exp(var) - 1.0))) * mean
        return cls(
            mean,
            std,
            math.exp(log_mean - z * log_std),
            math.exp(log_mean + z * log_std),
            float(level),
        )

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.lower <= value <= self.upper

    def to_dict(self) -> dict[str, float]:
        """JSON-serialisable form."""
        return {
            "mean": self.mean,
            "std": self.std,
            "lower": self.lower,
            "upper": self.upper,
            "level": self.level,
        }


def _z(level: float) -> float:
    """Half-width, in standard deviations, of the central normal interval at ``level``."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"an interval level must lie strictly between 0 and 1, got {level}")
    return NormalDist().inv_cdf(0.5 + float(level) / 2)


@dataclass(frozen=True)
class Prediction:
    """A world model's answer for one experiment.

    Attributes:
        outcomes: Estimate for every outcome the model knows.
        cost: Estimate of the real cost of running it.
        extrapolating: True where the question lies outside the conditions the model was
            trained on (a parameter beyond the observed range, a condition far from every
            observation): the intervals are then widened or should be distrusted.
        notes: Free-form remarks.
        extrapolating_reason: One line saying why ``extrapolating`` is set (e.g.
            ``"temperature=700 K is above the trained 300-600 K"``); ``None`` when it is not.
    """

    outcomes: dict[str, Estimate]
    cost: Estimate
    extrapolating: bool = False
    notes: list[str] = field(default_factory=list)
    extrapolating_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "outcomes": {k: v.to_dict() for k, v in self.outcomes.items()},
            "cost": self.cost.to_dict(),
            "extrapolating": self.extrapolating,
            "extrapolating_reason": self.extrapolating_reason,
            "notes": list(self.notes),
        }
