"""Split-conformal calibration of Gaussian predictive intervals.

Given held-out residuals standardised by the model's own predictive std,
``r_i = |y_i - mu_i| / sigma_i``, the interval ``mu +- q(level) sigma`` with ``q`` the
``ceil((n + 1) level) / n`` empirical quantile of the ``r_i`` covers a new exchangeable point
with probability at least ``level`` (Vovk et al.; Lei et al. 2018, "normalised" scores).
The same residuals give a variance scale ``c^2 = mean(r^2)`` (the maximum-likelihood rescaling
of the Gaussian), so reported standard deviations are calibrated too.

:class:`SizeCalibrator` conditions both on the training size: a run predictor's errors,
relative to its own std, differ between small training sizes and a data set's full size, so
one quantile over all sizes is too wide at one end and too narrow at the other. It keeps one
:class:`ConformalCalibrator` per doubling of the size and one for runs at their data set's full
size (:data:`FULL_FRACTION`), each holding at least :data:`MIN_BIN_POINTS` scores. The settings
were chosen on LCDB splits apart from the ones ``sciwm bench mlrun`` reports (fold seeds 1 and
2): 90% intervals covered 0.91 at the full size and 0.91 below it for the accuracy, 0.91 and
0.89 for the log train time; one quantile for all sizes gave the accuracy 0.93 and 0.91.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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


#: Width of a training-size bin of :class:`SizeCalibrator`, in log2 units (one doubling).
SIZE_BIN_WIDTH = 1.0
#: Calibration points a size bin needs; a sparser bin pools the points of its nearest bins.
MIN_BIN_POINTS = 200
#: A run whose training size is at least this fraction of its data set's instances is at the
#: data set's full size; those runs get a bin of their own (learning curves flatten there, and
#: the model's errors, relative to its std, are smaller than at the same size on a larger
#: data set).
FULL_FRACTION = 0.7
#: Tolerance (log2 units) when a size is binned: sizes recovered from standardised inputs
#: land in the bin of the exact size.
_BIN_TOL = 1e-3


class SizeCalibrator:
    """Split-conformal calibration conditioned on the training size.

    Calibration points are binned by training size: one bin per doubling
    (``[k, k + width)`` in log2 size), and one bin for runs at their data set's full size
    (``full``). Each bin is a :class:`ConformalCalibrator` on its own scores, pooled with the
    scores of its nearest size bins until it holds ``min_points`` (all scores if there are
    fewer), so with few calibration points it is the plain calibrator. A query takes the
    bin of its size (the nearest bin beyond the calibrated range); a full-size query takes
    the full-size bin if there is one (``min_points`` full-size scores), else its size bin.

    Args:
        scores: ``n`` non-negative scores ``|y - mu| / sigma``.
        log2_size: ``n`` log2 training sizes (default zeros: one bin).
        full: ``n`` flags: the run is at its data set's full size (default: none is).
        width: Bin width in log2 units.
        min_points: Scores a bin needs before it stands alone.
    """

    def __init__(
        self,
        scores: Tensor | None = None,
        log2_size: Tensor | None = None,
        full: Tensor | None = None,
        width: float = SIZE_BIN_WIDTH,
        min_points: int = MIN_BIN_POINTS,
    ) -> None:
        s = torch.zeros(0, dtype=torch.double) if scores is None else scores.detach().double()
        s = s.flatten()
        n = s.numel()
        size = torch.zeros(n) if log2_size is None else log2_size.detach().double().flatten()
        at_full = torch.zeros(n, dtype=torch.bool) if full is None else full.flatten().bool()
        if size.numel() != n or at_full.numel() != n:
            raise WorldModelError(
                f"size calibration needs one size and one full-size flag per score, got "
                f"{n} scores, {size.numel()} sizes and {at_full.numel()} flags"
            )
        if not bool(torch.isfinite(size).all()):
            raise WorldModelError("training sizes for calibration must be finite")
        if width <= 0 or min_points < 1:
            raise WorldModelError(
                f"bin width must be > 0 and min_points >= 1, got {width}, {min_points}"
            )
        self.scores, self.log2_size, self.full = s, size.double(), at_full
        self.width, self.min_points = float(width), int(min_points)
        has_full = int(at_full.sum()) >= self.min_points
        in_size_bins = ~at_full if has_full else torch.ones(n, dtype=torch.bool)
        ids = self._ids(size)
        self.size_ids = torch.unique(ids[in_size_bins])
        self.bins = [self._pooled(ids, in_size_bins, k) for k in range(len(self.size_ids))]
        self.full_bin = ConformalCalibrator(s[at_full]) if has_full else None
        self._memo: dict[str, Tensor] = {}
        if not self.bins:  # no scores (or only full-size ones): one bin for any size
            self.size_ids = torch.zeros(1, dtype=torch.long)
            self.bins = [self.full_bin or ConformalCalibrator()]

    def _ids(self, log2_size: Tensor) -> Tensor:
        return torch.floor(log2_size.double() / self.width + _BIN_TOL).long()

    def _pooled(self, ids: Tensor, rows: Tensor, k: int) -> ConformalCalibrator:
        """Bin ``k`` of :attr:`size_ids`, widened to its neighbours until it has enough."""
        lo = hi = k
        last = len(self.size_ids) - 1

        def pick() -> Tensor:
            return rows & (ids >= self.size_ids[lo]) & (ids <= self.size_ids[hi])

        while int(pick().sum()) < self.min_points and (lo > 0 or hi < last):
            lo, hi = max(0, lo - 1), min(last, hi + 1)
        return ConformalCalibrator(self.scores[pick()])

    @classmethod
    def from_residuals(
        cls,
        y: Tensor,
        mean: Tensor,
        std: Tensor,
        log2_size: Tensor | None = None,
        full: Tensor | None = None,
        **kwargs: float,
    ) -> SizeCalibrator:
        """Calibrator from held-out targets and predictions (all ``n`` tensors)."""
        scores = (y - mean).abs() / std.clamp_min(1e-12)
        return cls(scores, log2_size, full, **kwargs)  # type: ignore[arg-type]

    @property
    def n(self) -> int:
        """Number of calibration points."""
        return int(self.scores.numel())

    def bin_index(self, log2_size: Tensor, full: Tensor | None = None) -> Tensor:
        """``n`` bin indices of ``n`` queries: into :attr:`bins`, or ``len(bins)`` for the
        full-size bin (``log2_size`` and ``full``: ``n`` tensors)."""
        ids = self._ids(log2_size.detach().flatten())
        index = (ids[:, None] - self.size_ids[None, :]).abs().argmin(-1)
        if self.full_bin is not None and full is not None:
            index = torch.where(full.detach().flatten().bool(), len(self.bins), index)
        return index

    def scale(self, log2_size: Tensor, full: Tensor | None = None) -> Tensor:
        """``n`` multipliers of the predictive std (:attr:`ConformalCalibrator.scale` per bin)."""
        return self._per_bin("scale", lambda c: c.scale)[self.bin_index(log2_size, full)]

    def quantile(self, level: float, log2_size: Tensor, full: Tensor | None = None) -> Tensor:
        """``n`` interval half-widths at ``level``, in units of the *raw* predictive std."""
        values = self._per_bin(f"q{level!r}", lambda c: c.quantile(level))
        return values[self.bin_index(log2_size, full)]

    def _per_bin(self, key: str, value: Callable[[ConformalCalibrator], float]) -> Tensor:
        """A value per bin (the full-size bin last), computed once per key."""
        if key not in self._memo:
            cals = [*self.bins, self.full_bin or self.bins[-1]]
            self._memo[key] = torch.tensor([value(c) for c in cals], dtype=torch.double)
        return self._memo[key]

    def coverage(
        self,
        y: Tensor,
        mean: Tensor,
        std: Tensor,
        level: float,
        log2_size: Tensor,
        full: Tensor | None = None,
    ) -> float:
        """Fraction of ``y`` inside ``mean +- quantile(level) * std`` (all ``n`` tensors)."""
        q = self.quantile(level, log2_size, full)
        return float(((y - mean).abs().double() <= q * std.double()).double().mean())

    def state(self) -> dict[str, Tensor]:
        """Tensors to save."""
        return {
            "scores": self.scores.clone(),
            "log2_size": self.log2_size.clone(),
            "full": self.full.clone(),
            "width": torch.tensor(self.width),
            "min_points": torch.tensor(self.min_points),
        }

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> SizeCalibrator:
        """Inverse of :meth:`state`."""
        return cls(
            state["scores"],
            state["log2_size"],
            state["full"],
            float(state["width"]),
            int(state["min_points"]),
        )
