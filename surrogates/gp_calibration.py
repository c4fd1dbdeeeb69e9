"""Cross-validated calibration of an exact GP's predictive standard deviation.

Hyperparameters fitted by marginal likelihood on a few dozen points are overconfident: the
fit explains part of the noise as signal (botorch's noise prior favours a small noise, the
lengthscales shrink to follow it) and judges its own errors on the points it was fitted to.
On the conformance suite's known distribution (a slowly varying function plus Gaussian noise
of std 0.1, 30 points in 3 dimensions, 6 seeds) the 90 % intervals held 0.79, 0.78 and 0.75
of fresh draws (two outcomes and log cost). The closed-form leave-one-out residuals do not
see this (they keep the hyperparameters fitted on every point: factor ~1.1); refitting on
``K`` folds does. :func:`cv_scale` fits the GP again on each ``K - 1`` folds, standardises the
held-out fold's residuals by that fit's predictive std, and returns ``sqrt(mean(z^2))`` (the
maximum-likelihood rescaling of a Gaussian, as in
:class:`~surrogates.mlrun.calibration.ConformalCalibrator`); on the same case the intervals
then held 0.88, 0.94 and 0.88 (seeds 20-25; the suite checks other seeds).
"""

from __future__ import annotations

import math
import warnings

import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize

from sciwm.errors import WorldModelError
from surrogates.gp_fit import fit_or_restore

#: Folds of the cross-validation.
FOLDS = 5
#: Points below which no factor is estimated (a fold would be one or two points).
MIN_POINTS = 10
#: Points above which no factor is estimated (the folds would cost too much, and with many
#: points the fitted hyperparameters are sure enough).
MAX_POINTS = 200
#: Bounds on the factor.
MIN_SCALE, MAX_SCALE = 0.5, 4.0
#: A GP's factor is estimated again once its training points grew by this factor since the
#: last estimate (each estimate refits the GP on ``FOLDS`` folds: 1-2 s at 100 points, which
#: every round of a campaign would otherwise pay).
RECALIBRATE_GROWTH = 1.25


def cv_scale(model: SingleTaskGP, seed: int, folds: int = FOLDS) -> float:
    """Factor on ``model``'s predictive std from ``folds``-fold cross-validation.

    Args:
        model: A fitted exact single-output GP with a ``Standardize`` outcome transform
            (its ``n`` training points attached).
        seed: Seed of the fold assignment and the refits.
        folds: Number of folds.

    Returns:
        ``sqrt(mean(z^2))`` over the ``n`` held-out standardised residuals, clamped into
        ``[MIN_SCALE, MAX_SCALE]``; 1 with fewer than ``MIN_POINTS`` or more than
        ``MAX_POINTS`` points, or when a refit fails.
    """
    X = model.train_inputs[0]
    n = X.shape[0]
    if X.ndim != 2 or not MIN_POINTS <= n <= MAX_POINTS:
        return 1.0
    with torch.no_grad():
        Y = model.outcome_transform.untransform(model.train_targets.unsqueeze(-1))[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    z = []
    for f in range(folds):
        held = torch.zeros(n, dtype=torch.bool)
        held[perm[f::folds]] = True
        gp = SingleTaskGP(X[~held], Y[~held], outcome_transform=Standardize(m=1))
        try:
            with torch.enable_grad():  # callers may be under no_grad
                fit_or_restore(gp, None, seed + f)
        except WorldModelError:
            return 1.0
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = gp.posterior(X[held], observation_noise=True)
            std = post.variance.clamp_min(1e-18).sqrt()
            z.append(((Y[held] - post.mean) / std).reshape(-1))
    scale = float(torch.cat(z).pow(2).mean().sqrt())
    if not math.isfinite(scale):
        return 1.0
    return min(MAX_SCALE, max(MIN_SCALE, scale))


class StdFactors:
    """The :func:`cv_scale` factors of a world model's GPs, by key, kept across refits.

    A factor is estimated on the first :meth:`get` after a fit whose GP's training points
    grew by more than :data:`RECALIBRATE_GROWTH` since the last estimate (or that has none);
    a GP that is not ``plain`` (warm-started, fitted on a subset) gets 1.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.scales: dict[str, float] = {}
        #: Training points of each GP when its factor was estimated.
        self.n: dict[str, int] = {}

    def get(self, key: str, model: SingleTaskGP, plain: bool) -> float:
        """``key``'s factor, estimated now if it is not kept."""
        if key not in self.scales:
            self.scales[key] = cv_scale(model, self.seed) if plain else 1.0
            self.n[key] = _n_train(model)
        return self.scales[key]

    def refit(self, models: dict[str, tuple[SingleTaskGP, bool]]) -> None:
        """After a fit (key to the new GP and whether it is plain): keep each plain GP's
        factor while its training points grew by at most :data:`RECALIBRATE_GROWTH` since
        it was estimated on at least :data:`MIN_POINTS`; forget every other."""
        keep = {
            k: self.scales[k]
            for k, (model, plain) in models.items()
            if k in self.scales
            and plain
            and MIN_POINTS <= self.n.get(k, 0)
            and _n_train(model) <= RECALIBRATE_GROWTH * self.n[k]
        }
        self.scales, self.n = keep, {k: self.n[k] for k in keep}

    def to_json(self) -> dict[str, dict[str, float] | dict[str, int]]:
        """JSON form (saved with the world model)."""
        return {"scales": dict(self.scales), "scale_n": dict(self.n)}

    def load(self, extra: dict[str, object]) -> None:
        """Restore :meth:`to_json`'s form (missing keys: nothing kept)."""
        self.scales = {k: float(v) for k, v in dict(extra.get("scales", {})).items()}
        self.n = {k: int(v) for k, v in dict(extra.get("scale_n", {})).items()}


def _n_train(model: SingleTaskGP) -> int:
    """Training points of ``model``."""
    return int(model.train_inputs[0].shape[-2])


__all__ = ["FOLDS", "MAX_POINTS", "MIN_POINTS", "RECALIBRATE_GROWTH", "StdFactors", "cv_scale"]
