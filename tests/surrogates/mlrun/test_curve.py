"""Partial-curve features and the power-law extrapolation, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surrogates.mlrun.curve import (
    N_CURVE_FEATURES,
    curve_features,
    extrapolate_log_time,
    power_law_extrapolate,
)


def test_power_law_is_exact_on_a_power_law() -> None:
    n = np.array([16.0, 32.0, 64.0, 128.0])
    s = 1 - 0.8 * n**-0.5
    assert power_law_extrapolate(n, s, 4096) == pytest.approx(1 - 0.8 * 4096**-0.5)


def test_power_law_never_predicts_error_growth() -> None:
    n = np.array([16.0, 32.0, 64.0])
    s = np.array([0.9, 0.85, 0.8])  # getting worse with more data
    assert power_law_extrapolate(n, s, 1024) == pytest.approx(0.8)


def test_log_time_extrapolation_linear_in_log_log() -> None:
    n = np.array([16.0, 32.0, 64.0])
    t = 1e-3 * n**1.5
    assert extrapolate_log_time(n, t, 1024) == pytest.approx(math.log(1e-3 * 1024**1.5))


def test_features() -> None:
    assert not curve_features(None, None, None, 100).any()
    n = np.array([16.0, 32.0])
    f = curve_features(n, np.array([0.5, 0.6]), np.array([0.01, 0.02]), 128)
    assert f.shape == (N_CURVE_FEATURES,)
    assert f[0] == 1 and f[1] == pytest.approx(0.6) and f[2] == pytest.approx(2.0)
    assert f[3] == pytest.approx(0.1)  # per doubling
    with pytest.raises(ValueError, match="NaN"):
        curve_features(n, np.array([0.5, np.nan]), None, 128)
