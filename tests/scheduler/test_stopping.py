"""Stopping rules."""

from __future__ import annotations

import pytest

from scheduler.stopping import StoppingRule
from sciwm.errors import SpecError


def test_max_experiments_counts_failures_too():
    rule = StoppingRule(max_experiments=3)
    assert rule.check([1.0, 2.0], n_experiments=2) is None
    assert rule.check([1.0, 2.0], n_experiments=3) == "reached the maximum of 3 experiments"


def test_no_results_never_stops_early():
    rule = StoppingRule(max_experiments=10, patience=1, target=0.0)
    assert rule.check([], n_experiments=5) is None


@pytest.mark.parametrize(
    ("maximize", "values", "stops"),
    [
        (True, [0.1, 0.5], False),
        (True, [0.1, 0.9, 0.2], True),  # 0.9 >= 0.9
        (False, [0.5, 0.2], False),
        (False, [0.5, 0.1], True),  # 0.1 <= 0.1
    ],
)
def test_target(maximize, values, stops):
    target = 0.9 if maximize else 0.1
    reason = StoppingRule(100, target=target, maximize=maximize).check(values, len(values))
    assert (reason is not None) == stops
    if stops:
        assert reason.startswith("target reached")


def test_patience_counts_results_since_the_best():
    rule = StoppingRule(100, patience=2)
    assert rule.check([1.0, 3.0, 2.0], 3) is None  # one result since the best
    reason = rule.check([1.0, 3.0, 2.0, 3.0], 4)  # ties do not improve
    assert reason is not None and "no improvement in the last 2 results" in reason
    assert rule.check([1.0, 3.0, 2.0, 3.5], 4) is None


def test_patience_when_minimising():
    rule = StoppingRule(100, patience=2, maximize=False)
    assert rule.check([5.0, 4.0, 6.0], 3) is None
    assert rule.check([5.0, 4.0, 6.0, 7.0], 4) is not None
    assert rule.check([5.0, 4.0, 6.0, 3.0], 4) is None


def test_patience_zero_is_off():
    assert StoppingRule(100).check([3.0, 2.0, 1.0, 0.0, -1.0], 5) is None


def test_non_finite_values_are_ignored():
    rule = StoppingRule(100, target=1.0)
    assert rule.check([float("nan"), 0.5], 2) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_experiments": 0}, "max_experiments"),
        ({"max_experiments": 5, "patience": -1}, "patience"),
        ({"max_experiments": 5, "target": float("inf")}, "target"),
    ],
)
def test_bad_rules_raise(kwargs, match):
    with pytest.raises(SpecError, match=match):
        StoppingRule(**kwargs)
