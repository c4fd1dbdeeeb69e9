"""Each point's own predictive mean and variance of an exact GP, without the joint covariance.

gpytorch's exact prediction evaluates the prior covariance of the test points with each other
(the full ``n x n`` test-test kernel block) even when only its diagonal is read, and rebuilds
the training system on every call. A world model's ``predict`` needs only each candidate's own
mean and variance: :func:`marginals` computes

    mean = m(x) + k(x, X) alpha,        var = k(x, x) - |L^-1 k(X, x)|^2 (+ noise)

with ``L`` the Cholesky factor of ``K(X, X) + noise`` and ``alpha = (K + noise)^-1 (y - m(X))``
made once per fitted GP, then undoes botorch's ``Standardize`` as its posterior does. The
numbers are those of ``model.posterior(X).mean`` and the diagonal of its covariance to
rounding (``tests/surrogates/test_marginal.py``); ``n`` candidates cost ``n x N`` kernel
entries (``N`` training points) instead of ``n x n``.

A model this does not cover (input transforms, batched or multi-output models, other
likelihoods or outcome transforms) gets botorch's posterior.
"""

from __future__ import annotations

import weakref

import torch
from botorch.models.transforms.outcome import Standardize
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.models import ExactGP
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor


class _Solved:
    """A fitted GP's training system, factorised once."""

    def __init__(self, model: ExactGP) -> None:
        X = model.train_inputs[0]
        with torch.no_grad():
            noise = model.likelihood.noise.reshape(-1)
            K = model.covar_module(X).to_dense()
            K = K + torch.diag_embed(noise.expand(X.shape[-2]))
            self.L = psd_safe_cholesky(K)
            resid = (model.train_targets - model.mean_module(X)).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(resid, self.L).squeeze(-1)
        self.noise = noise.detach()
        self.state = [t.clone() for t in _state(model)]

    def fits(self, model: ExactGP) -> bool:
        """Whether ``model`` still has the data and hyperparameters this was made from."""
        now = _state(model)
        return len(now) == len(self.state) and all(
            a.shape == b.shape and torch.equal(a, b) for a, b in zip(now, self.state, strict=True)
        )


_SOLVED: weakref.WeakKeyDictionary[ExactGP, _Solved] = weakref.WeakKeyDictionary()


def _state(model: ExactGP) -> list[Tensor]:
    """The model's training data, parameters and buffers, by value (a hyperparameter set
    through ``.data`` changes no version counter)."""
    tensors = [*model.train_inputs, model.train_targets, *model.parameters(), *model.buffers()]
    return [t.detach() for t in tensors]


def supported(model: object) -> bool:
    """Whether :func:`marginals` computes ``model``'s moments itself (else: botorch's
    posterior)."""
    if not isinstance(model, ExactGP) or type(model.likelihood) is not GaussianLikelihood:
        return False
    if getattr(model, "input_transform", None) is not None or len(model.train_inputs) != 1:
        return False
    transform = getattr(model, "outcome_transform", None)
    if transform is not None and (type(transform) is not Standardize or transform.training):
        return False
    return model.train_inputs[0].dim() == 2 and model.train_targets.dim() == 1


def marginals(model: ExactGP, X: Tensor, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
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
    if not supported(model):
        post = model.posterior(X, observation_noise=observation_noise).distribution
        return post.mean, post.lazy_covariance_matrix.diagonal(dim1=-2, dim2=-1)
    solved = _SOLVED.get(model)
    if solved is None or not solved.fits(model):
        solved = _SOLVED[model] = _Solved(model)
    train = model.train_inputs[0]
    with torch.no_grad():
        X = X.to(train)
        cross = model.covar_module(X, train).to_dense()  # n x N
        mean = model.mean_module(X) + cross @ solved.alpha
        v = torch.linalg.solve_triangular(solved.L, cross.mT, upper=False)  # N x n
        # k(x, x) as n batches of one point: a kernel's diag mode may build n x n anyway
        # (botorch's CategoricalKernel does)
        own = X.unsqueeze(-2)
        prior = model.covar_module(own, own).to_dense().reshape(X.shape[:-1])
        var = prior - (v * v).sum(-2)
        if observation_noise:
            var = var + solved.noise
        transform = getattr(model, "outcome_transform", None)
        if transform is not None:
            scale = transform.stdvs.reshape(())
            mean = transform.means.reshape(()) + scale * mean
            var = var * scale**2
    return mean, var


__all__ = ["marginals", "supported"]
