"""Split-conformal calibration on synthetic data with known noise."""

from __future__ import annotations

from statistics import NormalDist

import pytest
import torch

from sciwm.errors import WorldModelError
from surrogates.mlrun.calibration import MIN_BIN_POINTS, ConformalCalibrator, SizeCalibrator


def test_restores_coverage_of_an_overconfident_model() -> None:
    g = torch.Generator().manual_seed(0)
    n = 4000
    sigma = 0.1 + torch.rand(2 * n, generator=g, dtype=torch.double)  # heteroscedastic
    y = sigma * torch.randn(2 * n, generator=g, dtype=torch.double)
    mean = torch.zeros(2 * n, dtype=torch.double)
    claimed = 0.5 * sigma  # the model claims half the true noise
    cal = ConformalCalibrator.from_residuals(y[:n], mean[:n], claimed[:n])
    z90 = NormalDist().inv_cdf(0.95)
    naive = float(((y[n:]).abs() <= z90 * claimed[n:]).double().mean())
    assert naive < 0.65
    assert cal.coverage(y[n:], mean[n:], claimed[n:], 0.9) == pytest.approx(0.9, abs=0.02)
    assert cal.scale == pytest.approx(2.0, rel=0.05)  # sqrt(E[(y / (sigma/2))^2]) = 2
    assert cal.quantile(0.9) == pytest.approx(2 * z90, rel=0.05)


def test_quantile_monotone_beyond_what_the_data_certify() -> None:
    cal = ConformalCalibrator(torch.linspace(0.1, 2.0, 9))
    levels = [0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
    q = [cal.quantile(a) for a in levels]
    assert all(b > a for a, b in zip(q, q[1:], strict=False))
    assert cal.quantile(0.5) == pytest.approx(float(torch.linspace(0.1, 2.0, 9)[4]))
    empty = ConformalCalibrator()
    assert empty.quantile(0.9) == pytest.approx(NormalDist().inv_cdf(0.95))
    with pytest.raises(WorldModelError):
        cal.quantile(1.0)
    with pytest.raises(WorldModelError):
        ConformalCalibrator(torch.tensor([-1.0]))


def _size_data(seed: int, n: int) -> tuple[torch.Tensor, ...]:
    """Scores of a model that claims unit std everywhere, while the true std is 2 at sizes
    64-255, 1 at 1024-4095 and 0.5 at a data set's full size (of any size)."""
    g = torch.Generator().manual_seed(seed)
    log2_size = torch.cat(
        [6.1 + 1.8 * torch.rand(n, generator=g), 10.1 + 1.8 * torch.rand(2 * n, generator=g)]
    )
    full = torch.zeros(3 * n, dtype=torch.bool)
    full[2 * n :] = True
    true_std = torch.cat([torch.full((n,), 2.0), torch.ones(n), torch.full((n,), 0.5)])
    y = true_std * torch.randn(3 * n, generator=g, dtype=torch.double)
    return (
        y,
        torch.zeros(3 * n, dtype=torch.double),
        torch.ones(3 * n, dtype=torch.double),
        log2_size,
        full,
    )


def test_size_calibration_covers_at_small_and_full_sizes() -> None:
    n = 3000
    y, mean, claimed, size, full = _size_data(0, n)
    cal = SizeCalibrator.from_residuals(y, mean, claimed, size, full)
    plain = ConformalCalibrator.from_residuals(y, mean, claimed)
    y2, mean2, claimed2, size2, full2 = _size_data(1, n)
    small, at_full = slice(0, n), slice(2 * n, 3 * n)
    z90 = NormalDist().inv_cdf(0.95)
    for part, true_std in ((small, 2.0), (at_full, 0.5)):
        args = (y2[part], mean2[part], claimed2[part], 0.9, size2[part], full2[part])
        assert cal.coverage(*args) == pytest.approx(0.9, abs=0.02)
        # closed form: the bin's quantile and variance scale are those of N(0, true_std^2)
        assert float(cal.quantile(0.9, size2[part], full2[part]).mean()) == pytest.approx(
            true_std * z90, rel=0.06
        )
        assert float(cal.scale(size2[part], full2[part]).mean()) == pytest.approx(
            true_std, rel=0.05
        )
    # one quantile for all sizes misses at both ends
    assert plain.coverage(y2[small], mean2[small], claimed2[small], 0.9) < 0.8
    assert plain.coverage(y2[at_full], mean2[at_full], claimed2[at_full], 0.9) > 0.99


def test_size_calibration_pools_sparse_bins_and_round_trips() -> None:
    y, mean, claimed, size, full = _size_data(2, 60)  # 60 points a group: below MIN_BIN_POINTS
    cal = SizeCalibrator.from_residuals(y, mean, claimed, size, full)
    plain = ConformalCalibrator.from_residuals(y, mean, claimed)
    assert cal.n == 180 < MIN_BIN_POINTS
    assert cal.full_bin is None  # too few full-size points: they join their size bins
    q = cal.quantile(0.9, torch.tensor([6.5, 11.0, 20.0]), torch.tensor([False, True, False]))
    assert torch.allclose(q, torch.full((3,), plain.quantile(0.9), dtype=torch.double))
    again = SizeCalibrator.from_state(cal.state())
    assert torch.equal(again.quantile(0.8, size, full), cal.quantile(0.8, size, full))
    big = SizeCalibrator.from_residuals(*_size_data(3, 400)[:3], *_size_data(3, 400)[3:])
    assert big.full_bin is not None and len(big.bins) == 4  # bins 6, 7, 10, 11
    # a size past the calibrated range takes the nearest bin
    far = big.bin_index(torch.tensor([3.0, 16.0, 16.0]), torch.tensor([False, False, True]))
    assert far.tolist() == [0, 3, 4]
    with pytest.raises(WorldModelError):
        SizeCalibrator(torch.ones(3), torch.ones(2))
