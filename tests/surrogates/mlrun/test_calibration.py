"""Split-conformal calibration on synthetic data with known noise."""

from __future__ import annotations

from statistics import NormalDist

import pytest
import torch

from sciwm.errors import WorldModelError
from surrogates.mlrun.calibration import ConformalCalibrator


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
