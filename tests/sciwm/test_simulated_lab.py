"""The simulated lab: the connector contract, virtual time, cost caps and failures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import ConnectorConformance
from sciwm.testing.problems import PROBLEMS, problem_named
from sciwm.testing.simulated_lab import SimulatedLab

HERE = "tests.sciwm.test_simulated_lab"


def parabola(x: float) -> dict[str, float]:
    """``y = (x - 0.3)**2``; raises for negative ``x``."""
    if x < 0:
        raise ValueError(f"boom at x={x}")
    return {"y": (x - 0.3) ** 2}


def priced(x: float) -> dict[str, object]:
    """Reports its own cost."""
    return {"outcomes": {"y": x}, "cost": 2.0 + x}


def dear(x: float) -> float:
    """A cost function: ``10 x``."""
    return 10.0 * x


class TestProblemConformance(ConnectorConformance):
    """A problem with virtual run times equal to the cost: experiments run for a while."""

    def make_connector(self, workdir: Path) -> Connector:
        return SimulatedLab(workdir, problem="branin", run_time="cost", parallelism=2)

    def times_run(self, connector: Connector, experiment: Experiment) -> int | None:
        assert isinstance(connector, SimulatedLab)
        rec = connector.record(experiment.id)
        return None if rec is None else rec["evaluations"]

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return Experiment.create("conf", 0, {"x1": 3.0, "x2": 2.0})

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return Experiment.create("conf", 1, {"x1": 99.0, "x2": 2.0})

    @pytest.fixture
    def failing_message(self) -> str:
        return "x1"

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return Experiment.create("conf", 2, {"x1": 9.0, "x2": 14.0})

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["f"]


class TestFunctionConformance(ConnectorConformance):
    """A callable by import path, finished by its first poll."""

    def make_connector(self, workdir: Path) -> Connector:
        return SimulatedLab(workdir, function=f"{HERE}:parabola")

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return Experiment.create("conf", 0, {"x": 0.5})

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return Experiment.create("conf", 1, {"x": -1.0})

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["y"]


def _finish(lab: SimulatedLab, exp: Experiment):  # noqa: ANN202
    handle = lab.submit(exp)
    for _ in range(10):
        if lab.poll(handle).finished:
            return lab.fetch(handle)
    raise AssertionError("did not finish in 10 polls")


def test_problem_outcome_and_cost_in_closed_form(tmp_path):
    lab = SimulatedLab(tmp_path, problem="branin")
    x1, x2 = 3.0, 2.0
    obs = _finish(lab, Experiment.create("c", 0, {"x1": x1, "x2": x2}))
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    branin = (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10
    u1, u2 = (x1 + 5) / 15, x2 / 15
    assert obs.status is Status.COMPLETED
    assert obs.outcomes["f"] == pytest.approx(branin)
    assert obs.cost == pytest.approx(10 ** ((u1 + u2) / 2))
    assert lab.now == 0.0  # run_time 0: no virtual time passed


def test_problem_evaluate_matches_the_botorch_function():
    problem = problem_named("hartmann6")
    params = {f"x{i + 1}": 0.1 * (i + 1) for i in range(6)}
    value, cost = problem.evaluate(params)
    x = torch.tensor([[0.1 * (i + 1) for i in range(6)]], dtype=torch.double)
    assert value == pytest.approx(float(problem.make()(x)[0]))
    assert cost == pytest.approx(10 ** ((0.1 + 0.6) / 2))
    assert [p.name for p in PROBLEMS] == ["branin", "hartmann6", "hartmann6_dear"]
    with pytest.raises(KeyError, match="branin"):
        problem_named("nope")


def test_virtual_clock_reveals_results_in_order_of_their_end(tmp_path):
    lab = SimulatedLab(tmp_path, function=f"{HERE}:priced", run_time="cost", parallelism=3)
    long, short = Experiment.create("c", 0, {"x": 5.0}), Experiment.create("c", 1, {"x": 1.0})
    h_long, h_short = lab.submit(long), lab.submit(short)
    assert lab.capacity() == 1
    # First pass: both seen running; time stands still.
    assert [lab.poll(h_long), lab.poll(h_short)] == [Status.RUNNING, Status.RUNNING]
    assert lab.now == 0.0
    # Second pass: the clock moves to the next end (the short one, cost 3), then the long one.
    assert lab.poll(h_long) is Status.RUNNING and lab.now == pytest.approx(3.0)
    assert lab.poll(h_short) is Status.COMPLETED
    assert lab.capacity() == 2
    late = Experiment.create("c", 2, {"x": 0.0})  # starts at t = 3, ends at 5
    h_late = lab.submit(late)
    assert lab.poll(h_late) is Status.RUNNING
    # The long one was seen running at t = 3 already: its poll moves the clock to 5.
    assert lab.poll(h_long) is Status.RUNNING and lab.now == pytest.approx(5.0)
    assert lab.poll(h_late) is Status.COMPLETED
    assert lab.poll(h_long) is Status.COMPLETED and lab.now == pytest.approx(7.0)
    assert lab.fetch(h_long).cost == pytest.approx(7.0)
    assert lab.fetch(h_late).metadata == {"simulated_start": 3.0, "simulated_end": 5.0}


def test_experiment_over_its_cap_is_stopped_there(tmp_path):
    lab = SimulatedLab(tmp_path, function=f"{HERE}:priced", run_time="cost")
    exp = Experiment.create("c", 0, {"x": 4.0}, max_cost=2.5)
    obs = _finish(lab, exp)
    assert obs.status is Status.FAILED and obs.outcomes == {}
    assert obs.cost == pytest.approx(2.5) and "cost cap" in obs.error
    assert lab.now == pytest.approx(2.5)
    fits = _finish(lab, Experiment.create("c", 1, {"x": 0.4}, max_cost=2.5))
    assert fits.status is Status.COMPLETED and fits.cost == pytest.approx(2.4)


def test_cancel_charges_the_part_run(tmp_path):
    lab = SimulatedLab(tmp_path, function=f"{HERE}:priced", run_time="cost", parallelism=2)
    long = lab.submit(Experiment.create("c", 0, {"x": 2.0}))  # cost 4: runs 0 -> 4
    short = lab.submit(Experiment.create("c", 1, {"x": 0.0}))  # cost 2: runs 0 -> 2
    assert [lab.poll(long), lab.poll(short)] == [Status.RUNNING, Status.RUNNING]
    assert lab.poll(long) is Status.RUNNING and lab.now == pytest.approx(2.0)
    lab.cancel(long)  # half-way through
    obs = lab.fetch(long)
    assert obs.status is Status.CANCELLED and obs.cost == pytest.approx(2.0)
    assert lab.poll(long) is Status.CANCELLED and lab.capacity() == 2
    lab.cancel(short)  # finished: left as it is
    assert lab.fetch(short).status is Status.COMPLETED


def test_cost_function_and_default_unit_cost(tmp_path):
    lab = SimulatedLab(tmp_path / "a", function=f"{HERE}:parabola", cost_function=f"{HERE}:dear")
    assert _finish(lab, Experiment.create("c", 0, {"x": 0.7})).cost == pytest.approx(7.0)
    plain = SimulatedLab(tmp_path / "b", function=f"{HERE}:parabola")
    assert _finish(plain, Experiment.create("c", 0, {"x": 0.7})).cost == 1.0


def test_failure_rate_is_seeded_per_experiment(tmp_path):
    def failed(workdir: Path, seed: int) -> list[bool]:
        lab = SimulatedLab(workdir, problem="branin", failure_rate=0.3, seed=seed)
        exps = [Experiment.create("c", i, {"x1": 0.01 * i, "x2": 1.0}) for i in range(200)]
        return [_finish(lab, e).status is Status.FAILED for e in exps]

    first = failed(tmp_path / "a", 0)
    assert failed(tmp_path / "b", 0) == first
    assert failed(tmp_path / "c", 1) != first
    assert 0.2 < sum(first) / len(first) < 0.4


def test_state_survives_a_new_instance(tmp_path):
    lab = SimulatedLab(tmp_path, function=f"{HERE}:priced", run_time="cost")
    handle = lab.submit(Experiment.create("c", 0, {"x": 1.0}))
    lab.poll(handle)
    again = SimulatedLab(tmp_path, function=f"{HERE}:priced", run_time="cost")
    assert again.poll(handle) is Status.COMPLETED and again.now == pytest.approx(3.0)
    with pytest.raises(ConnectorError, match="holds no experiment"):
        again.poll({"experiment_id": "elsewhere"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one of"),
        ({"problem": "branin", "function": f"{HERE}:parabola"}, "exactly one of"),
        ({"problem": "rosenbrock"}, "choose from"),
        ({"function": "tests.sciwm.nowhere:fn"}, "cannot import"),
        ({"problem": "branin", "speed": 2}, "unknown setting"),
        ({"problem": "branin", "run_time": -1}, "run_time"),
        ({"problem": "branin", "failure_rate": 1.0}, "failure_rate"),
        ({"problem": "branin", "parallelism": 0}, "parallelism"),
    ],
)
def test_bad_settings_say_what_to_fix(tmp_path, settings, message):
    with pytest.raises(ConnectorError, match=message):
        SimulatedLab(tmp_path, **settings)
