"""The dispatch gate: reservations, reasons, capacity and the budget invariant."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.gate import DEFAULT_SAFETY_FACTOR, Candidate, DispatchGate, initial_reservation
from sciwm.errors import BudgetError
from sciwm.prediction import Estimate, Prediction


def _cand(mean: float | None, upper: float | None = None) -> Candidate:
    """A candidate whose cost prediction has the given mean and 90% upper bound."""
    if mean is None:
        return Candidate({"x": 0.5}, None)
    upper = 2 * mean if upper is None else upper
    cost = Estimate(mean=mean, std=mean / 2, lower=mean / 2, upper=upper, level=0.9)
    return Candidate({"x": 0.5}, Prediction({"y": Estimate.gaussian(0.0, 1.0)}, cost))


def test_reservation_is_safety_factor_times_upper_bound():
    gate = DispatchGate(100.0, safety_factor=1.25, min_cap=0.0, unit="s")
    [d] = gate.decide([_cand(2.0, 4.0)], spent=10.0, running_reserved=[5.0], capacity=1)
    assert d.dispatch
    assert d.max_cost == pytest.approx(5.0)
    assert d.reason == "reserved 5 s (90% upper bound 4 s x 1.25)"


def test_default_reservation_without_prediction():
    gate = DispatchGate(50.0)
    [d] = gate.decide([_cand(None)], spent=0.0, running_reserved=[], capacity=1)
    assert d.dispatch and d.max_cost == pytest.approx(25.0)  # half the budget, one slot
    assert "no prediction" in d.reason
    gate = DispatchGate(50.0, parallelism=4)  # half the budget shared by four slots
    assert gate.default_reservation == pytest.approx(50.0 / 8) == initial_reservation(50.0, 4)
    assert gate.min_cap == pytest.approx(50.0 / 16)
    gate = DispatchGate(50.0, default_reservation=7.0)
    [d] = gate.decide([_cand(None)], spent=0.0, running_reserved=[], capacity=1)
    assert d.max_cost == pytest.approx(7.0)


def test_default_safety_factor_is_the_campaign_files():
    from sciwm.spec import SchedulerSpec

    assert DispatchGate(10.0).safety_factor == DEFAULT_SAFETY_FACTOR == 1.5
    assert SchedulerSpec().cost_safety_factor is None  # left out: the gate's default


def test_reservation_is_capped_by_what_remains():
    gate = DispatchGate(10.0)
    [d] = gate.decide([_cand(2.0, 4.0)], spent=5.0, running_reserved=[2.0], capacity=1)
    # 1.5 * 4 = 6 wanted, 3 left, above the predicted mean 2: dispatched with all that is left.
    assert d.dispatch
    assert d.max_cost == pytest.approx(3.0)
    assert d.max_cost <= 3.0
    assert "all the budget left" in d.reason


def test_held_back_when_budget_left_is_below_predicted_mean():
    gate = DispatchGate(10.0)
    [d] = gate.decide([_cand(4.0, 6.0)], spent=6.0, running_reserved=[1.0], capacity=1)
    assert not d.dispatch and d.max_cost is None
    assert d.reason.startswith("budget left 3")
    assert "predicted mean cost 4" in d.reason


def test_nothing_dispatched_when_budget_is_used_up():
    gate = DispatchGate(10.0)
    decisions = gate.decide(
        [_cand(None), _cand(0.001, 0.002)], spent=4.0, running_reserved=[6.0], capacity=2
    )
    assert [d.dispatch for d in decisions] == [False, False]
    assert gate.remaining(4.0, [6.0]) == 0.0


def test_capacity_is_respected_in_order():
    gate = DispatchGate(1000.0)
    cands = [_cand(1.0) for _ in range(5)]
    decisions = gate.decide(cands, spent=0.0, running_reserved=[], capacity=2)
    assert [d.dispatch for d in decisions] == [True, True, False, False, False]
    assert all("no capacity" in d.reason for d in decisions[2:])
    assert not any(d.dispatch for d in gate.decide(cands, spent=0, running_reserved=[], capacity=0))


def test_later_candidates_see_earlier_reservations():
    gate = DispatchGate(10.0, safety_factor=1.0)
    decisions = gate.decide(
        [_cand(3.0, 4.0), _cand(3.0, 4.0), _cand(3.0, 4.0)],
        spent=0.0,
        running_reserved=[],
        capacity=3,
    )
    assert [d.dispatch for d in decisions] == [True, True, False]
    assert decisions[0].max_cost == pytest.approx(4.0)
    assert decisions[1].max_cost == pytest.approx(4.0)
    assert "budget left 2" in decisions[2].reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget_total": 0.0}, "positive"),
        ({"budget_total": math.inf}, "positive"),
        ({"budget_total": 1.0, "safety_factor": 0.5}, ">= 1"),
        ({"budget_total": 1.0, "default_reservation": -1.0}, "positive"),
    ],
)
def test_bad_settings_raise_budget_error(kwargs, match):
    with pytest.raises(BudgetError, match=match):
        DispatchGate(**kwargs)


def test_bad_amounts_raise_budget_error():
    gate = DispatchGate(10.0)
    with pytest.raises(BudgetError, match="spent"):
        gate.decide([_cand(None)], spent=-1.0, running_reserved=[], capacity=1)
    with pytest.raises(BudgetError, match=r"running_reserved\[1\]"):
        gate.remaining(0.0, [1.0, math.nan])
    with pytest.raises(BudgetError, match="capacity"):
        gate.decide([_cand(None)], spent=0.0, running_reserved=[], capacity=-1)


# -- the budget invariant ----------------------------------------------------------------------
amounts = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
predictions = st.one_of(
    st.none(),
    st.tuples(
        st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
        st.floats(min_value=1e-9, max_value=1e7, allow_nan=False),
    ),
)


def _from(pred: tuple[float, float] | None) -> Candidate:
    if pred is None:
        return _cand(None)
    mean, upper = pred
    return _cand(mean, upper)


@settings(max_examples=300, deadline=None)
@given(
    budget=amounts,
    spent_frac=st.floats(min_value=0.0, max_value=1.0),
    running_fracs=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=6),
    preds=st.lists(predictions, max_size=8),
    capacity=st.integers(min_value=0, max_value=10),
    safety=st.floats(min_value=1.0, max_value=3.0),
    default=st.one_of(st.none(), amounts),
)
def test_budget_invariant_for_any_inputs(
    budget, spent_frac, running_fracs, preds, capacity, safety, default
):
    gate = DispatchGate(budget, safety_factor=safety, default_reservation=default, min_cap=0.0)
    # Spent and running reservations that fit in the budget, split at random.
    parts = [spent_frac, *running_fracs]
    scale = budget / max(1.0, sum(parts))
    spent, running = parts[0] * scale, [f * scale for f in parts[1:]]
    if spent + sum(running) > budget:  # rounding of the split itself
        running = []
        spent = min(spent, budget)
    decisions = gate.decide(
        [_from(p) for p in preds], spent=spent, running_reserved=running, capacity=capacity
    )
    assert len(decisions) == len(preds)
    dispatched = [d for d in decisions if d.dispatch]
    assert len(dispatched) <= capacity
    assert spent + sum(running) + sum(d.max_cost for d in dispatched) <= budget
    for d in decisions:
        assert d.reason
        if d.dispatch:
            assert d.max_cost is not None and d.max_cost > 0
            pred = d.candidate.prediction
            if pred is not None:
                assert d.max_cost <= safety * pred.cost.upper * (1 + 1e-12)
                assert d.max_cost >= min(pred.cost.mean, safety * pred.cost.upper)
        else:
            assert d.max_cost is None


@settings(max_examples=150, deadline=None)
@given(
    budget=amounts,
    steps=st.lists(
        st.tuples(
            predictions,
            st.floats(min_value=0.0, max_value=1.0),  # fraction of its cap the run costs
            st.integers(min_value=0, max_value=3),  # capacity at this step
            st.booleans(),  # whether the oldest running experiment finishes now
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_budget_never_exceeded_over_a_campaign(budget, steps):
    """Simulate a campaign: whatever is dispatched and however it ends, spent <= budget."""
    gate = DispatchGate(budget)
    spent = 0.0
    running: list[tuple[float, float]] = []  # (reservation, fraction of it the run will cost)
    for pred, frac, capacity, finish in steps:
        if finish and running:
            reserved, f = running.pop(0)
            spent += reserved * f  # the connector stops it at its cap: cost <= reservation
        decisions = gate.decide(
            [_from(pred)], spent=spent, running_reserved=[r for r, _ in running], capacity=capacity
        )
        for d in decisions:
            if d.dispatch:
                running.append((d.max_cost, frac))
        assert spent + sum(r for r, _ in running) <= budget
    spent += sum(r * f for r, f in running)
    assert spent <= budget


def test_min_cap_floors_a_confidently_tiny_reservation() -> None:
    from sciwm.prediction import Estimate, Prediction

    pred = Prediction(outcomes={}, cost=Estimate.lognormal(math.log(1e-4), 0.1, 0.9))
    gate = DispatchGate(10.0, min_cap=2.0)
    (d,) = gate.decide([Candidate({"x": 0.1}, pred)], spent=0.0, running_reserved=[], capacity=1)
    assert d.dispatch and d.max_cost == pytest.approx(2.0)
    # the floor never beats the budget left
    (d,) = gate.decide([Candidate({"x": 0.1}, pred)], spent=9.0, running_reserved=[0.5], capacity=1)
    assert d.dispatch and d.max_cost == pytest.approx(0.5)


@settings(max_examples=200, deadline=None)
@given(
    mean=st.one_of(st.none(), st.floats(1e-3, 50.0)),
    spread=st.floats(1.0, 5.0),
    spent=st.floats(0.0, 120.0),
    running=st.lists(st.floats(0.0, 30.0), max_size=3),
)
def test_fits_is_the_rule_decide_dispatches_by(mean, spread, spent, running):
    gate = DispatchGate(100.0, unit="s")
    cand = _cand(mean, None if mean is None else mean * spread)
    left = gate.remaining(spent, running)
    [d] = gate.decide([cand], spent=spent, running_reserved=running, capacity=1)
    assert gate.fits(cand, left) == d.dispatch
    if d.dispatch:  # what it reserves never takes the total over the budget
        assert spent + sum(running) + d.max_cost <= 100.0
