"""Split-conformal calibration of Gaussian predictive intervals.

Given held-out residuals standardised by the model's own predictive std,
``r_i = |y_i - mu_i| / sigma_i``, the interval ``mu +- q(level) sigma`` with ``q`` the
``ceil((n + 1) level) / n`` empirical quantile of the ``r_i`` covers a new exchangeable point
with probability at least ``level`` (Vovk et al.; Lei et al. 2018, "normalised" scores).
The same residuals give a variance scale ``c^2 = mean(r^2)`` (the maximum-likelihood rescaling
of the Gaussian), so reported standard deviations are calibrated too.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from torch import Tensor

from sciwm.errors import WorldModelError


class ConformalCalibrator:
    """Normalised split-conformal quantiles plus a Gaussian variance scale.

    Args:
        scores: ``n`` non-negative calibration scores ``|y - mu| / sigma`` (``n`` may be 0:
            then the calibrator leaves the Gaussian intervals as they are).
    """

    def __init__(self, scores: Tensor | None = None) -> None:
        s = torch.zeros(0, dtype=torch.double) if scores is None else scores.detach().double()
        s = s.flatten()
        if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
            raise WorldModelError("conformal scores must be finite and non-negative")
        self.scores = torch.sort(s).values

    @classmethod
    def from_residuals(cls, y: Tensor, mean: Tensor, std: Tensor) -> ConformalCalibrator:
        """Calibrator from held-out targets and predictions (all ``n`` tensors)."""
        return cls((y - mean).abs() / std.clamp_min(1e-12))

    @property
    def n(self) -> int:
        """Number of calibration points."""
        return int(self.scores.numel())

    @property
    def scale(self) -> float:
        """Multiplier of the predictive std: ``sqrt(mean(r^2))`` (1 without data)."""
        if self.n == 0:
            return 1.0
        return max(1e-3, float(self.scores.pow(2).mean().sqrt()))

    def quantile(self, level: float) -> float:
        """Half-width of the interval at ``level``, in units of the *raw* predictive std.

        Monotone in ``level``. Where ``level`` asks for more than ``n`` points can certify
        (``ceil((n + 1) level) > n``) the largest score is stretched by the Gaussian tail,
        ``r_max z(level) / z(n / (n + 1))``, or the Gaussian quantile of the scaled std if
        larger, so the half-width keeps growing with the level.
        """
        if not 0.0 < level < 1.0:
            raise WorldModelError(f"the interval level must lie in (0, 1), got {level}")
        z = NormalDist().inv_cdf(0.5 + level / 2) * self.scale
        if self.n == 0:
            return z
        k = math.ceil((self.n + 1) * level)
        if k > self.n:
            z_n = NormalDist().inv_cdf(0.5 + self.n / (self.n + 1) / 2)
            return max(float(self.scores[-1]) * z / (self.scale * z_n), z)
        return float(self.scores[k - 1])

    def coverage(self, y: Tensor, mean: Tensor, std: Tensor, level: float) -> float:
        """Fraction of ``y`` inside ``mean +- quantile(level) * std``."""
        q = self.quantile(level)
        return float(((y - mean).abs() <= q * std).double().mean())

    def state(self) -> dict[str, Tensor]:
        """Tensors to save."""
        return {"scores": self.scores.clone()}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> ConformalCalibrator:
        """Inverse of :meth:`state`."""
        return cls(state["scores"])
