"""Early stopping: a run whose curve cannot reach the best is stopped, a promising one runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.early_stop import judge_running
from scheduler.gate import Candidate, DispatchGate
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate, Prediction
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace(
    (
        Parameter("learner", "categorical", choices=("good", "bad")),
        Parameter("train_size", "int", 64, 4096, log=True, fidelity=True),
    )
)
TOP = {"good": 0.9, "bad": 0.6}


def curve(learner: str, size: int) -> float:
    """Accuracy rising with log size to the learner's top at 4096."""
    return TOP[learner] - 0.2 * (1 - math.log(size / 64) / math.log(64))


def fitted() -> GPWorldModel:
    sizes = [64, 256, 1024, 4096]
    rows = [(lr, n) for lr in ("good", "bad") for n in sizes if (lr, n) != ("bad", 4096)]
    exps = [
        Experiment.create("es", i, {"learner": lr, "train_size": n})
        for i, (lr, n) in enumerate(rows)
    ]
    obs = [
        Observation(e.id, Status.COMPLETED, {"accuracy": curve(lr, n)}, cost=n / 100)
        for e, (lr, n) in zip(exps, rows, strict=True)
    ]
    model = GPWorldModel(SPACE, ["accuracy"])
    model.fit(exps, obs)
    return model


def partial(learner: str, sizes: list[int]) -> list[dict]:
    return [
        {
            "fidelity": {"train_size": n},
            "outcomes": {"accuracy": curve(learner, n)},
            "cost": sum(m / 100 for m in sizes[: i + 1]),
        }
        for i, n in enumerate(sizes)
    ]


def test_a_curve_that_cannot_reach_the_best_is_stopped_and_the_saving_recorded() -> None:
    model = fitted()
    run = {"learner": "bad", "train_size": 4096}
    seen = partial("bad", [64, 256, 1024])
    verdict = judge_running(model, SPACE, "accuracy", True, run, seen, best=0.9)
    assert verdict is not None and verdict.stop
    assert verdict.predicted_upper < 0.9
    (full,) = model.predict([run])
    assert verdict.saved_cost == pytest.approx(full.cost.mean - seen[-1]["cost"])
    assert verdict.saved_cost > 0 and "cannot reach the best result 0.9" in verdict.reason


def test_a_promising_curve_keeps_running() -> None:
    model = fitted()
    run = {"learner": "good", "train_size": 4096}
    verdict = judge_running(
        model, SPACE, "accuracy", True, run, partial("good", [64, 256, 1024]), best=0.9
    )
    assert verdict is not None and not verdict.stop and verdict.saved_cost == 0.0
    assert verdict.predicted_upper >= 0.9


def test_nothing_to_judge_without_a_point_inside_the_space() -> None:
    model = fitted()
    run = {"learner": "bad", "train_size": 4096}
    outside = [{"fidelity": {"train_size": 16}, "outcomes": {"accuracy": 0.1}, "cost": 0.1}]
    assert judge_running(model, SPACE, "accuracy", True, run, outside, best=0.9) is None
    assert judge_running(model, SPACE, "accuracy", True, run, [], best=0.9) is None
    last = partial("bad", [4096])  # the final point: the run is done
    assert judge_running(model, SPACE, "accuracy", True, run, last, best=0.9) is None


@settings(max_examples=60, deadline=None)
@given(
    budget=st.floats(1.0, 100.0),
    steps=st.lists(
        st.tuples(
            st.floats(0.01, 30.0),  # predicted mean cost
            st.floats(0.0, 3.0),  # true cost as a multiple of the reservation's need
            st.floats(0.0, 1.0),  # share of its course after which it is cancelled (1: never)
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_budget_invariant_holds_with_cancellations(budget: float, steps: list) -> None:
    """Dispatch, cancel part-way and finish experiments: spent + reserved never passes the
    budget, whatever a cancelled run had cost by then (it pays at most its reservation)."""
    gate = DispatchGate(budget)
    spent, running = 0.0, []
    for mean, factor, stop_at in steps:
        pred = Prediction(
            {"f": Estimate.gaussian(0.0, 1.0)}, Estimate.lognormal(math.log(mean), 0.3)
        )
        (d,) = gate.decide(
            [Candidate({"x": 0.0}, pred, 0.0)], spent=spent, running_reserved=running, capacity=1
        )
        if d.dispatch:
            running.append(d.max_cost)
        assert spent + sum(running) <= budget * (1 + 1e-12)
        if running:  # the oldest ends: cancelled part-way, or run to its (capped) end
            cap = running.pop(0)
            full = min(cap, factor * mean)  # the connector stops it at its cap
            spent += full * stop_at if stop_at < 1.0 else full
        assert spent <= budget * (1 + 1e-12)
