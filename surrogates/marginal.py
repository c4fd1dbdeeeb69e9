"""Each point's own predictive mean and variance of an exact GP, without the joint covariance.

gpytorch's exact prediction evaluates the prior covariance of the test points with each other
(the full ``n x n`` test-test kernel block) even when only its diagonal is read. A world
model's ``predict`` needs only each candidate's own mean and variance: :func:`marginals`
computes, from the training factors that :mod:`surrogates.gp_cache` keeps per fitted GP,

    mean = m(x) + k(x, X) a,        var = k(x, x) - |L^-1 k(X, x)|^2 (+ noise),

with ``k(x, x)`` evaluated point by point, then undoes botorch's ``Standardize`` as its
posterior does. The numbers are those of ``model.posterior(X)``'s mean and the diagonal of its
covariance to rounding (``tests/surrogates/test_marginal.py``); ``n`` candidates cost
``n x N`` kernel entries (``N`` training points) instead of ``n x n``.

A model this does not cover (input transforms, batched or multi-output models, other
likelihoods or outcome transforms, training mode) gets botorch's posterior.
"""

from __future__ import annotations

import gpytorch
import torch
from botorch.models.transforms.outcome import Standardize
from gpytorch.likelihoods import GaussianLikelihood
from torch import Tensor

from surrogates.gp_cache import CachedPosterior, cached


def _factors(model: object, observation_noise: bool) -> CachedPosterior | None:
    """The model's cached training factors, or ``None`` where :func:`marginals` falls back."""
    transform = getattr(model, "outcome_transform", None)
    if transform is not None and (type(transform) is not Standardize or transform.training):
        return None
    if observation_noise and type(getattr(model, "likelihood", None)) is not GaussianLikelihood:
        return None  # a fixed-noise likelihood knows no noise at new points
    return cached(model)  # type: ignore[arg-type]


def supported(model: object, observation_noise: bool = False) -> bool:
    """Whether :func:`marginals` computes ``model``'s moments itself (else: botorch's
    posterior)."""
    return _factors(model, observation_noise) is not None


def marginals(model: object, X: Tensor, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
    """Predictive mean and variance of each of ``n`` points, in the outcome's units.

    Args:
        model: A fitted single-output exact GP (botorch ``SingleTaskGP`` and kin), eval mode.
        X: A ``n x d`` tensor of inputs.
        observation_noise: Add the likelihood's noise to the variance.

    Returns:
        ``(mean, var)``: two ``n`` tensors (not differentiable); ``var`` is the diagonal of
        the posterior covariance, not floored (``posterior().variance`` floors it at
        gpytorch's ``min_variance``).
    """
    factors = _factors(model, observation_noise)
    # kernels evaluated at once: the lazy wrapper asks a composite kernel for its batch shape
    # over and over (about 5 ms a call for botorch's mixed kernel, whatever the point count)
    with torch.no_grad(), gpytorch.settings.lazily_evaluate_kernels(False):
        if factors is None:
            post = model.posterior(X, observation_noise=observation_noise).distribution  # type: ignore[attr-defined]
            return post.mean, post.lazy_covariance_matrix.diagonal(dim1=-2, dim2=-1)
        gp = factors.model
        train = factors.X_train
        X = X.to(train)
        cross = gp.covar_module(X, train).to_dense()  # n x N
        mean = gp.mean_module(X) + cross @ factors.alpha
        W = cross @ factors.root  # n x N: rows of (L^-1 k(X, x))^T
        # k(x, x) as n batches of one point: a kernel's diag mode may build n x n anyway
        # (botorch's CategoricalKernel does)
        own = X.unsqueeze(-2)
        prior = gp.covar_module(own, own).to_dense().reshape(X.shape[:-1])
        var = prior - (W * W).sum(-1)
        if observation_noise:
            var = var + gp.likelihood.noise.reshape(-1)
        transform = getattr(gp, "outcome_transform", None)
        if transform is not None:
            scale = transform.stdvs.reshape(())
            mean = transform.means.reshape(()) + scale * mean
            var = var * scale**2
    return mean, var


def mean_std(model: object, X: Tensor, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
    """``n`` means and standard deviations, as ``model.posterior(X)``'s ``mean`` and
    ``variance.sqrt()`` (the variance floored at gpytorch's ``min_variance``), from
    :func:`marginals` (``X``: ``n x d``)."""
    mean, var = marginals(model, X, observation_noise)
    return mean, var.clamp_min(gpytorch.settings.min_variance.value(var.dtype)).sqrt()


__all__ = ["marginals", "mean_std", "supported"]
