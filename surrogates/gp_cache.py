"""An exact GP's latent posterior from cached training-set factors, for acquisition loops.

An acquisition optimiser evaluates the posterior of the same fitted GP hundreds of times.
gpytorch rebuilds its lazy prediction machinery on every call (about 3 ms of bookkeeping per
posterior on one core, whatever the size of the training set), which made the acquisition's
evaluations the whole cost of a proposal. :class:`CachedPosterior` factors the training
covariance once,

    K = k(X_train, X_train) + diag(noise),    L = chol(K),    a = K^-1 (y - m(X_train)),

and then computes each posterior with a handful of tensor operations,

    mean(X) = m(X) + k(X, X_train) a,
    cov(X)  = k(X, X) - V^T V,    V = L^-1 k(X_train, X),

the same exact-GP algebra as gpytorch's Cholesky path (the cache is only valid while the
GP's hyperparameters and data stay as they were: a refit builds a new GP, hence a new cache).
Gradients flow through the test points as before.
"""

from __future__ import annotations

import torch
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

#: Added to the posterior covariance's diagonal (as gpytorch's prediction does for stability).
POSTERIOR_JITTER = 1e-10

_ATTR = "_sciwm_posterior_cache"


class CachedPosterior:
    """Latent posterior of one fitted exact GP (eval mode) from cached factors.

    Args:
        model: A fitted single-output exact GP with a Gaussian likelihood and no input
            transform (see :func:`supports`).
    """

    def __init__(self, model: GPyTorchModel) -> None:
        self.model = model
        X = model.train_inputs[0]
        y = model.train_targets
        with torch.no_grad():
            K = model.covar_module(X, X).to_dense()
            noise = model.likelihood.noise.reshape(-1).to(K)
            K = K + torch.diag_embed(noise.expand(K.shape[-1]))
            L = psd_safe_cholesky(K)
            resid = (y - model.mean_module(X)).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(resid, L).squeeze(-1)
            eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
            #: ``L^-T`` (``n x n``): ``k(X, X_train) L^-T`` is ``V^T`` in one matmul, several
            #: times faster than a triangular solve per evaluation (and its backward).
            self.root = torch.linalg.solve_triangular(L, eye, upper=False).transpose(-1, -2)
        self.X_train = X

    def latent(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and covariance in the GP's training units.

        Args:
            X: A ``batch_shape x q x d`` tensor.

        Returns:
            ``(mean, cov)``: ``batch_shape x q`` and ``batch_shape x q x q`` tensors.
        """
        m = self.model
        K_xt = m.covar_module(X, self.X_train).to_dense()  # batch x q x n
        mean = m.mean_module(X) + K_xt @ self.alpha
        W = K_xt @ self.root  # batch x q x n: V^T
        cov = m.covar_module(X, X).to_dense() - W @ W.transpose(-1, -2)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return mean, cov + POSTERIOR_JITTER * eye

    def latent_mean(self, X: Tensor) -> Tensor:
        """``batch_shape x q`` posterior mean in training units (no covariance computed)."""
        m = self.model
        return m.mean_module(X) + m.covar_module(X, self.X_train).to_dense() @ self.alpha

    def posterior(self, X: Tensor) -> GPyTorchPosterior:
        """The latent posterior at ``X`` (``batch_shape x q x d``), in the outcome's units.

        Returns:
            A posterior with event shape ``batch_shape x q x 1``, as ``model.posterior(X)``.
        """
        mean, cov = self.latent(X)
        transform = getattr(self.model, "outcome_transform", None)
        if isinstance(transform, Standardize) and not transform.training:
            mu = transform.means.reshape(-1)[0]
            sd = transform.stdvs.reshape(-1)[0]
            return GPyTorchPosterior(MultivariateNormal(mu + sd * mean, sd * sd * cov))
        post = GPyTorchPosterior(MultivariateNormal(mean, cov))
        if transform is not None:
            post = transform.untransform_posterior(post)
        return post


def supports(model: object) -> bool:
    """Whether :class:`CachedPosterior` reproduces ``model``'s posterior.

    A single-output exact GP (one training set, no batch of models) with a homoscedastic or
    fixed-noise Gaussian likelihood, no input transform, in eval mode.
    """
    if not isinstance(model, GPyTorchModel) or getattr(model, "training", True):
        return False
    if getattr(model, "input_transform", None) is not None:
        return False
    if getattr(model, "num_outputs", 1) != 1 or len(getattr(model, "train_inputs", ())) != 1:
        return False
    if model.train_inputs[0].dim() != 2:
        return False
    return type(model.likelihood) in (GaussianLikelihood, FixedNoiseGaussianLikelihood)


def cached(model: GPyTorchModel) -> CachedPosterior | None:
    """``model``'s cache (built on first use), or ``None`` when it is not supported.

    The cache lives on the model object: a refitted GP is a new object with a new cache.
    A model put back in training mode loses its cache.
    """
    if not supports(model):
        model.__dict__.pop(_ATTR, None)
        return None
    cache = model.__dict__.get(_ATTR)
    if cache is None:
        cache = CachedPosterior(model)
        object.__setattr__(model, _ATTR, cache)
    return cache


def posterior(model: GPyTorchModel, X: Tensor) -> GPyTorchPosterior:
    """``model.posterior(X)`` (latent), from its cache where the model allows one."""
    cache = cached(model)
    return model.posterior(X) if cache is None else cache.posterior(X)


__all__ = ["CachedPosterior", "cached", "posterior", "supports"]
