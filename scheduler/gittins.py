"""The Pandora's-box Gittins index: a cost-aware acquisition (Xie et al., 2024).

For a candidate ``x`` with posterior ``y(x) ~ N(mu, sigma^2)`` (``y`` the objective, to be
maximised) and cost ``c(x)``, the Gittins index ``g(x)`` is the reservation value at which
paying ``c(x)`` to look at ``y(x)`` breaks even:

    E[max(y(x) - g, 0)] = sigma * h((mu - g) / sigma) = lam * c(x),   h(z) = z Phi(z) + phi(z).

The agent runs the experiment with the largest index. Unlike expected improvement per unit
cost, the index is the optimal policy of the Pandora's-box problem (independent boxes), and
it does not collapse onto cheap regions once expected improvements become tiny: it compares
candidates on the scale of the objective, so a dear but uncertain region keeps a high index.

With a fixed ``lam`` the index stalls once the model is sure that no candidate beats the
incumbent by more than its cost: every index falls below the incumbent (the Pandora's-box
policy would stop) and the largest one is a tiny refinement next to it. The adaptive
variant (PBGI-D of Xie et al., made stateless) sets ``lam`` at each step to a fraction of
the largest expected improvement per unit cost over a quasi-random sample of candidates, so
some candidate always beats the incumbent; as the expected improvements shrink, ``lam``
shrinks, the index tends to an upper confidence bound and the cost weighs less (it enters as
``log c`` under a square root), i.e. the cost term anneals as the search converges.

Here ``mu`` and ``sigma`` are in units of the spread of the model's mean over the observed
points, and the cost is relative to their geometric mean cost, so ``lam`` is unitless: small
``lam`` explores (the index tends to an upper confidence bound), large ``lam`` exploits.
"""

from __future__ import annotations

import math

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.analytic import _log_ei_helper
from botorch.models.model import Model
from botorch.utils.probability.utils import log_ndtr
from torch import Tensor

#: Quasi-random candidates on which the adaptive cost weight is set.
ADAPTIVE_SAMPLES = 1024

#: The adaptive cost weight is this fraction of the best breakeven weight among them.
ADAPTIVE_FRACTION = 0.5

#: Bisection steps of the index equation (each halves a bracket of width < 60).
BISECTION_STEPS = 64


def solve_log_h(log_r: Tensor) -> Tensor:
    """Solve ``log h(z) = log_r`` for ``z``, ``h(z) = z Phi(z) + phi(z)``, differentiably.

    ``z`` is found by bisection without gradients, then one Newton step from the root
    carries the implicit derivative ``dz/dlog_r = h(z) / Phi(z)``.

    Args:
        log_r: A tensor of any shape.

    Returns:
        A tensor ``z`` of the same shape.
    """
    with torch.no_grad():
        lr = log_r.detach()
        # h(z) < exp(-z^2 / 2) for z <= -1 and h(z) > z for z > 0: a valid bracket.
        lo = -torch.sqrt(2 * (-lr).clamp_min(0.0)) - 1.0
        hi = lr.clamp_max(50.0).exp() + 1.0
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            above = _log_ei_helper(mid) > lr
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        z0 = (lo + hi) / 2
        slope = (log_ndtr(z0) - _log_ei_helper(z0)).exp()  # d log h / dz > 0
    return z0 - (_log_ei_helper(z0) - log_r) / slope


class GittinsIndex(AcquisitionFunction):
    """Pandora's-box Gittins index with a predicted cost, on the unit cube.

    Args:
        model: A botorch model of the objective.
        log_cost_model: A botorch model of the natural log of the cost.
        X_baseline: A ``n x d`` tensor of observed points: they set the incumbent (the best
            posterior mean among them) and the scales of objective and cost.
        lam: The unitless cost weight ``lam`` (> 0).
        maximize: Whether the objective is maximised (otherwise it is negated).
        X_pending: A ``m x d`` tensor of points still running, or ``None``; the candidate's
            posterior variance is reduced as if they had been observed (their means kept).
    """

    def __init__(
        self,
        model: Model,
        log_cost_model: Model,
        X_baseline: Tensor,
        lam: float,
        maximize: bool = True,
        X_pending: Tensor | None = None,
    ) -> None:
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"the Gittins cost weight must be a number > 0, got {lam!r}")
        super().__init__(model=model)
        self.log_cost_model = log_cost_model
        self.lam = float(lam)
        self.sign = 1.0 if maximize else -1.0
        with torch.no_grad():
            mean = self.sign * model.posterior(X_baseline.unsqueeze(-2)).mean.reshape(-1)
            log_cost = log_cost_model.posterior(X_baseline.unsqueeze(-2)).mean.reshape(-1)
        self.best = float(mean.max())
        spread = float(mean.std()) if len(mean) > 1 else 0.0
        self.scale = spread if math.isfinite(spread) and spread > 1e-12 else 1.0
        self.log_cost_ref = float(log_cost.mean())
        self.dim = X_baseline.shape[-1]
        self.set_X_pending(X_pending)

    def _mean_sigma(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and std (``b``) of ``b x 1 x d`` candidates, given the pending."""
        pending = self.X_pending
        if pending is None or pending.numel() == 0:
            post = self.model.posterior(X)
            return self.sign * post.mean[..., 0, 0], post.variance[..., 0, 0].clamp_min(
                1e-12
            ).sqrt()
        m = pending.shape[0]
        X_full = torch.cat([X, pending.expand(*X.shape[:-2], m, X.shape[-1])], dim=-2)
        post = self.model.posterior(X_full)
        cov = post.distribution.covariance_matrix  # b x (1 + m) x (1 + m)
        k = cov[..., 1:, 0:1]
        K = cov[..., 1:, 1:]
        K = K + 1e-6 * K.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None] * torch.eye(
            m, dtype=K.dtype
        )
        reduce = (k * torch.linalg.solve(K, k)).sum(dim=(-2, -1))
        var = (cov[..., 0, 0] - reduce).clamp_min(1e-12)
        return self.sign * post.mean[..., 0, 0], var.sqrt()

    def breakeven(self, X: Tensor) -> Tensor:
        """The cost weight at which each candidate's index equals the incumbent.

        ``g(x) > incumbent`` exactly when ``lam < EI(x) / c(x)`` (both unitless, the expected
        improvement over the incumbent), so this is the candidates' expected improvement
        per unit of relative cost.

        Args:
            X: A ``b x 1 x d`` tensor of unit-cube points.

        Returns:
            A ``b`` tensor of ``EI(x) / c(x)`` (unitless).
        """
        mean, sigma = self._mean_sigma(X)
        log_cost = self.log_cost_model.posterior(X).mean[..., 0, 0]
        sig = sigma / self.scale
        u = (mean - self.best) / sigma
        return (sig.log() + _log_ei_helper(u) - (log_cost - self.log_cost_ref)).exp()

    def forward(self, X: Tensor) -> Tensor:
        """Evaluate on candidates.

        Args:
            X: A ``b x 1 x d`` tensor of unit-cube points.

        Returns:
            A ``b`` tensor: the Gittins index minus the incumbent, in units of the objective's
            spread (positive where looking is worth its cost against the incumbent).
        """
        if X.shape[-2] != 1:
            raise ValueError("the Gittins index takes one point per batch (q = 1)")
        mean, sigma = self._mean_sigma(X)
        log_cost = self.log_cost_model.posterior(X).mean[..., 0, 0]
        mu = (mean - self.best) / self.scale
        sig = sigma / self.scale
        log_r = math.log(self.lam) + (log_cost - self.log_cost_ref) - sig.log()
        return mu - sig * solve_log_h(log_r)


def adaptive_lambda(
    acqf: GittinsIndex, lam_max: float, seed: int = 0, X_extra: Tensor | None = None
) -> float:
    """The stateless PBGI-D cost weight: ``min(lam_max, fraction * max breakeven weight)``.

    Args:
        acqf: The index; its ``lam`` is not used.
        lam_max: The largest cost weight (used while some candidate is worth far more than
            its cost).
        seed: Seed of the scrambled Sobol candidates.
        X_extra: A ``k x d`` tensor of further candidates (e.g. around the incumbent), or
            ``None``.

    Returns:
        The cost weight (> 0).
    """
    d = acqf.dim
    engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
    X = engine.draw(ADAPTIVE_SAMPLES, dtype=torch.double)
    if X_extra is not None and X_extra.numel():
        X = torch.cat([X, X_extra.to(X)])
    with torch.no_grad():
        best = float(acqf.breakeven(X.unsqueeze(-2)).max())
    if not (math.isfinite(best) and best > 0):
        return lam_max
    return max(min(lam_max, ADAPTIVE_FRACTION * best), 1e-12)
