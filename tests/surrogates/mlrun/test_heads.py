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


def test_out_of_bag_scores_calibrate_the_whole_ensembles_intervals() -> None:
    """Scores from the out-of-bag members (about one of three per row), standardised as
    :meth:`DeepEnsemble.out_of_bag` says, give the 3-member ensemble 90 % intervals that
    cover 0.85-0.95 of fresh draws (60 training rows, 12 seeds)."""
    from surrogates.mlrun.calibration import ConformalCalibrator

    coverage = []
    for seed in range(40, 52):
        x, y, _ = data(60, seed)
        cfg = HeadConfig(hidden=32, steps=300, n_members=3, batch_size=64, seed=seed)
        ens = DeepEnsemble(4, 2, 1, cfg)
        ens.fit(x, y)
        mean, var, has = ens.out_of_bag(x)
        cal = ConformalCalibrator.from_residuals(
            y[has, 0].double(), mean[has, 0].double(), var[has, 0].sqrt().double()
        )
        xt, yt, _ = data(1000, 1000 + seed)
        with torch.no_grad():
            mk, vk = ens(xt)
        coverage.append(cal.coverage(yt[:, 0].double(), mk[:, 0].double(), vk[:, 0].sqrt(), 0.9))
    assert 0.85 <= sum(coverage) / len(coverage) <= 0.95, coverage


def test_pairwise_rank_loss_closed_form() -> None:
    from surrogates.mlrun.heads import pairwise_rank_loss

    y = torch.tensor([[[1.0], [0.0], [5.0]]])  # 1 x 3 x 1
    mean = torch.tensor([[[0.2], [0.0], [0.0]]])
    group = torch.tensor([[0, 0, 1]])  # only rows 0 and 1 form a pair
    loss = pairwise_rank_loss(y, mean, group, scale=0.1)
    assert torch.isclose(loss, torch.nn.functional.softplus(torch.tensor(-2.0)))
    flipped = pairwise_rank_loss(y, -mean, group, scale=0.1)
    assert flipped > loss + 1.0


def test_ranking_loss_learns_the_order_within_groups() -> None:
    # Groups share a large random level; inside a group the order is set by x[:, 1].
    g = torch.Generator().manual_seed(3)
    n_groups, per = 40, 8
    group = torch.arange(n_groups).repeat_interleave(per)
    level = torch.randn(n_groups, generator=g)[group] * 3
    x = torch.stack([level, torch.rand(len(group), generator=g)], 1)
    y = (level + 0.3 * x[:, 1] + 0.05 * torch.randn(len(group), generator=g)).unsqueeze(-1)
    inputs = Inputs(torch.zeros(len(group), 4), x, torch.zeros(len(group), N_CURVE_FEATURES))
    cfg = HeadConfig(hidden=32, steps=300, n_members=2, batch_size=64, rank_weight=1.0)
    ens = DeepEnsemble(4, 2, 1, cfg)
    first, last = ens.fit(inputs, y, group=group)
    assert last < first
    with torch.no_grad():
        mean, _ = ens(inputs)
    m, t = mean.squeeze(-1).reshape(n_groups, per), y.squeeze(-1).reshape(n_groups, per)
    dm = m.unsqueeze(-1) - m.unsqueeze(-2)
    dt = t.unsqueeze(-1) - t.unsqueeze(-2)
    agree = ((dm * dt) > 0).float().sum() / (dt != 0).float().sum()
    assert agree > 0.8
