"""The heteroscedastic deep ensemble: training lowers the loss and learns the noise."""

from __future__ import annotations

import torch

from surrogates.mlrun.curve import N_CURVE_FEATURES
from surrogates.mlrun.heads import DeepEnsemble, HeadConfig, Inputs


def data(n: int, seed: int) -> tuple[Inputs, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    noise = 0.05 + 0.5 * (x[:, 0] > 0).float()  # noisy on one half
    f = torch.sin(3 * x[:, :1]) + x[:, 1:]
    y = f + noise.unsqueeze(-1) * torch.randn(n, 1, generator=g)
    text = torch.zeros(n, 4)
    return Inputs(text, x, torch.zeros(n, N_CURVE_FEATURES)), y, (noise, f)


def test_training_lowers_loss_and_learns_heteroscedastic_noise() -> None:
    x, y, noise = data(600, 0)
    ens = DeepEnsemble(4, 2, 1, HeadConfig(hidden=32, steps=800, n_members=3, batch_size=128))
    first, last = ens.fit(x, y)
    assert last < first - 0.5
    xt, _, (nt, ft) = data(400, 1)
    with torch.no_grad():
        mean, var = ens(xt)
    assert mean.shape == var.shape == (400, 1)
    baseline = (ft - ft.mean()).abs().mean()
    assert (mean - ft).abs().mean() < 0.3 * baseline  # it learnt the function
    std = var.sqrt().squeeze(-1)
    assert std[nt > 0.3].mean() > 3 * std[nt < 0.3].mean()  # it found the noisy half


def test_out_of_bag_rows_and_missing_targets() -> None:
    x, y, _ = data(200, 2)
    y2 = torch.cat([y, y], 1)
    y2[:50, 1] = float("nan")  # missing targets do not break training
    ens = DeepEnsemble(4, 2, 2, HeadConfig(hidden=16, steps=100, n_members=4, batch_size=64))
    ens.fit(x, y2)
    mean, var, has = ens.out_of_bag(x)
    assert has.float().mean() > 0.75  # out of some bag unless in all 4: 1 - 0.632**4 = 0.84
    assert bool(torch.isfinite(mean).all()) and bool((var > 0).all())
