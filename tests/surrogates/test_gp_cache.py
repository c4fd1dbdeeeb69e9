"""The cached exact-GP posterior reproduces gpytorch's, values and gradients."""

from __future__ import annotations

import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize

from surrogates.gp_cache import cached, posterior, supports
from surrogates.gp_fit import fit_or_restore
from surrogates.gp_warm import fit_warm_gp


def _gp(n: int, seed: int, shift: float = 0.0) -> tuple[SingleTaskGP, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, generator=gen, dtype=torch.double)
    Y = (torch.sin(4 * X[:, :1]) + X[:, 1:2] ** 2 + shift) * 3.0 + 1.0
    Y = Y + 0.05 * torch.randn(n, 1, generator=gen, dtype=torch.double)
    model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
    return fit_or_restore(model, None, seed), X, Y


def _agree(model: SingleTaskGP, X: torch.Tensor) -> None:
    ref = model.posterior(X)
    got = posterior(model, X)
    assert got.mean.shape == ref.mean.shape
    torch.testing.assert_close(got.mean, ref.mean, rtol=1e-6, atol=1e-8)
    cov_ref = ref.distribution.covariance_matrix
    cov_got = got.distribution.covariance_matrix
    torch.testing.assert_close(cov_got, cov_ref, rtol=1e-5, atol=1e-8)
    # gradients with respect to the test points
    Xa = X.clone().requires_grad_(True)
    Xb = X.clone().requires_grad_(True)
    pa, pb = model.posterior(Xa), posterior(model, Xb)
    (pa.mean.sum() + pa.variance.sqrt().sum()).backward()
    (pb.mean.sum() + pb.variance.sqrt().sum()).backward()
    torch.testing.assert_close(Xb.grad, Xa.grad, rtol=1e-4, atol=1e-7)


def test_cached_posterior_matches_gpytorch_on_batches_of_joint_points():
    model, _, _ = _gp(40, 0)
    assert supports(model)
    gen = torch.Generator().manual_seed(1)
    _agree(model, torch.rand(5, 4, 3, generator=gen, dtype=torch.double))  # b x q x d
    _agree(model, torch.rand(7, 3, generator=gen, dtype=torch.double))  # q x d
    assert cached(model) is cached(model)  # built once


def test_cached_posterior_of_a_warm_started_gp_matches_gpytorch():
    old, _, _ = _gp(30, 2)
    new, X, Y = _gp(8, 3, shift=0.3)
    warm = fit_warm_gp(old, X, Y, seed=0)
    gen = torch.Generator().manual_seed(4)
    _agree(warm, torch.rand(3, 2, 3, generator=gen, dtype=torch.double))


def test_a_model_in_training_mode_is_not_cached():
    model, _, _ = _gp(10, 5)
    model.train()
    assert not supports(model) and cached(model) is None
    model.eval()
    assert cached(model) is not None
