"""Estimates and predictions: closed-form normal and log-normal summaries."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import pytest
import torch

from sciwm.prediction import Estimate, Prediction


def test_gaussian_interval_at_90() -> None:
    est = Estimate.gaussian(2.0, 0.5, level=0.9)
    z = 1.6448536269514722  # Phi^-1(0.95)
    assert est.lower == pytest.approx(2.0 - z * 0.5, rel=1e-12)
    assert est.upper == pytest.approx(2.0 + z * 0.5, rel=1e-12)
    assert (est.mean, est.std, est.level) == (2.0, 0.5, 0.9)
    assert est.upper - est.lower == pytest.approx(2 * 1.6449 * 0.5, abs=1e-4)


@pytest.mark.parametrize("level", [0.5, 0.68, 0.95, 0.99])
def test_gaussian_interval_has_its_coverage(level: float) -> None:
    est = Estimate.gaussian(-1.0, 3.0, level=level)
    dist = NormalDist(-1.0, 3.0)
    assert dist.cdf(est.upper) - dist.cdf(est.lower) == pytest.approx(level, abs=1e-12)
    assert est.mean - est.lower == pytest.approx(est.upper - est.mean)


def test_gaussian_zero_std_is_a_point() -> None:
    est = Estimate.gaussian(1.5, 0.0)
    assert est.lower == est.mean == est.upper == 1.5
    assert est.contains(1.5) and not est.contains(1.5000001)


def test_gaussian_accepts_tensors_and_returns_floats() -> None:
    est = Estimate.gaussian(torch.tensor(1.0), torch.tensor(2.0))  # type: ignore[arg-type]
    assert all(type(v) is float for v in est.to_dict().values())


def test_lognormal_closed_form() -> None:
    mu, s, level = math.log(10.0), 0.3, 0.9
    est = Estimate.lognormal(mu, s, level)
    z = NormalDist().inv_cdf(0.95)
    assert est.mean == pytest.approx(math.exp(mu + s**2 / 2), rel=1e-12)
    assert est.std == pytest.approx(math.sqrt((math.exp(s**2) - 1) * math.exp(2 * mu + s**2)))
    assert est.lower == pytest.approx(math.exp(mu - z * s), rel=1e-12)
    assert est.upper == pytest.approx(math.exp(mu + z * s), rel=1e-12)
    # The interval is central in log space: its geometric middle is the median exp(mu).
    assert math.sqrt(est.lower * est.upper) == pytest.approx(10.0, rel=1e-12)


@pytest.mark.parametrize(("mu", "s"), [(-20.0, 0.1), (0.0, 2.0), (5.0, 0.0)])
def test_lognormal_positive(mu: float, s: float) -> None:
    est = Estimate.lognormal(mu, s)
    assert est.mean > 0 and est.lower > 0 and est.upper >= est.lower and est.std >= 0


def test_lognormal_matches_sampled_moments() -> None:
    g = torch.Generator().manual_seed(0)
    samples = torch.exp(1.0 + 0.5 * torch.randn(200_000, generator=g, dtype=torch.double))
    est = Estimate.lognormal(1.0, 0.5)
    assert samples.mean().item() == pytest.approx(est.mean, rel=0.01)
    assert samples.std().item() == pytest.approx(est.std, rel=0.02)
    inside = ((samples >= est.lower) & (samples <= est.upper)).double().mean().item()
    assert inside == pytest.approx(0.9, abs=0.005)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 90.0])
def test_bad_level_raises(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        Estimate.gaussian(0.0, 1.0, level)
    with pytest.raises(ValueError, match="level"):
        Estimate.lognormal(0.0, 1.0, level)


def test_negative_std_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        Estimate.gaussian(0.0, -1.0)
    with pytest.raises(ValueError, match="negative"):
        Estimate.lognormal(0.0, -1.0)


def test_prediction_to_dict_is_json() -> None:
    p = Prediction(
        outcomes={"y": Estimate.gaussian(1.0, 0.1)},
        cost=Estimate.lognormal(2.0, 0.2),
        extrapolating=True,
        notes=["far from data"],
        extrapolating_reason="x=95 is outside the observed 0-10",
    )
    data = json.loads(json.dumps(p.to_dict()))
    assert data["outcomes"]["y"] == p.outcomes["y"].to_dict()
    assert data["cost"]["mean"] == pytest.approx(math.exp(2.0 + 0.02))
    assert data["extrapolating"] is True and data["notes"] == ["far from data"]
    assert data["extrapolating_reason"] == "x=95 is outside the observed 0-10"
    assert Prediction(p.outcomes, p.cost).to_dict()["extrapolating_reason"] is None
