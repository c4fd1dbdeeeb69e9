"""Diagonal-only GP moments: the same numbers as botorch's posterior, refreshed on change."""

from __future__ import annotations

import pytest
import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize

from surrogates.gp_fit import fit_or_restore
from surrogates.marginal import marginals, supported


def data(n: int = 12, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.double)
    X[:, -1] = torch.randint(0, 3, (n,), generator=g).double() / 2  # a categorical column
    Y = (X[:, :1] * 3).sin() + 0.5 * X[:, -1:] + 0.05 * torch.randn(n, 1, generator=g).double()
    return X, Y


def reference(model, X: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """botorch's posterior, its full covariance's diagonal."""
    with torch.no_grad():
        mvn = model.posterior(X, observation_noise=noise).distribution
        return mvn.mean, mvn.covariance_matrix.diagonal()


@pytest.mark.parametrize("kind", ["single", "mixed"])
@pytest.mark.parametrize("noise", [False, True])
def test_marginals_match_the_posterior(kind: str, noise: bool) -> None:
    X, Y = data()
    if kind == "single":
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
    else:
        model = MixedSingleTaskGP(X, Y, cat_dims=[2], outcome_transform=Standardize(m=1))
    model = fit_or_restore(model, None, 0, "a test GP")
    assert supported(model)
    Xq, _ = data(40, seed=1)
    Xq = torch.cat([Xq, X[:3]])  # training points too: variance near the noise floor
    mean, var = marginals(model, Xq, observation_noise=noise)
    ref_mean, ref_var = reference(model, Xq, noise)
    assert mean.shape == var.shape == (len(Xq),)
    assert torch.allclose(mean, ref_mean, rtol=1e-9, atol=1e-12)
    assert torch.allclose(var, ref_var, rtol=1e-7, atol=1e-12)
    # one point alone gives its row of the batch
    one_mean, one_var = marginals(model, Xq[5:6], observation_noise=noise)
    assert torch.allclose(one_mean, mean[5:6]) and torch.allclose(one_var, var[5:6])


def test_each_fitted_gp_answers_from_its_own_factors() -> None:
    # the factors live on the model object (surrogates.gp_cache): a refit is a new object
    Xq, _ = data(10, seed=2)
    answers = []
    for seed in (0, 4):
        X, Y = data(seed=seed)
        model = fit_or_restore(
            SingleTaskGP(X, Y, outcome_transform=Standardize(m=1)), None, 0, "a test GP"
        )
        mean, var = marginals(model, Xq, observation_noise=True)
        ref_mean, ref_var = reference(model, Xq, True)
        assert torch.allclose(mean, ref_mean, rtol=1e-9) and torch.allclose(var, ref_var, rtol=1e-7)
        answers.append(mean)
    assert not torch.allclose(*answers)


def test_a_model_it_does_not_cover_gets_the_posterior() -> None:
    X, Y = data()
    model = SingleTaskGP(
        X * 10, Y, input_transform=Normalize(d=3), outcome_transform=Standardize(m=1)
    )
    model = fit_or_restore(model, None, 0, "a test GP")
    assert not supported(model)
    Xq, _ = data(8, seed=3)
    mean, var = marginals(model, Xq * 10, observation_noise=True)
    ref_mean, ref_var = reference(model, Xq * 10, True)
    assert torch.allclose(mean, ref_mean) and torch.allclose(var, ref_var)
