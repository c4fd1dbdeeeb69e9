"""The multi-objective campaign bench: problems, hypervolume traces, rows, one product run."""

from __future__ import annotations

import math
import tomllib

import pandas as pd
import pytest

from lab_connectors.replay import ReplayConnector
from sciwm.bench.campaign.mo_problems import branin_currin, lcdb_problem
from sciwm.bench.campaign.mo_report import summarize_mo, table
from sciwm.bench.campaign.multiobjective import MORun, run_one
from sciwm.experiment import Experiment
from sciwm.spec import parse_spec

pytestmark = pytest.mark.timeout(240)

#: A two-learner "data set": fast and weak, slow and strong, and dominated configurations.
CURVES = {
    "fast": {64: (0.60, 0.1), 128: (0.65, 0.2), 256: (0.66, 0.4)},
    "slow": {64: (0.62, 1.0), 128: (0.75, 2.0), 256: (0.85, 4.0)},
}


def test_lcdb_problem_reference_point_and_best_hypervolume_in_closed_form():
    p = lcdb_problem(1, "toy", CURVES)
    # front: (0.60, 0.1), (0.65, 0.2), (0.66, 0.4), (0.75, 2.0), (0.85, 4.0); nadir
    # (0.60, 4.0) moved 10% of the range (0.25, 3.9) further
    assert p.ref == pytest.approx((0.60 - 0.025, 4.0 + 0.39))
    r0, r1 = p.ref
    steps = [(0.60, 0.1), (0.65, 0.2), (0.66, 0.4), (0.75, 2.0), (0.85, 4.0)]
    expected, prev = 0.0, r0
    for acc, t in sorted(steps, key=lambda s: s[0]):
        expected += (acc - prev) * (r1 - t)
        prev = acc
    assert p.best_hv == pytest.approx(expected)
    assert p.cap == 21.0  # 3 x the front's train time (20.1), up to two digits
    # a size LCDB did not record is answered at the largest recorded one below it
    assert p.evaluate({"learner": "slow", "train_size": 200}) == (
        {"accuracy": 0.75, "train_time": 2.0},
        2.0,
    )


def test_lcdb_problem_answers_as_the_replay_connector_does(tmp_path):
    csv = tmp_path / "runs.csv"
    pd.DataFrame(
        [("toy", k, a, s, t) for k, c in CURVES.items() for a, (s, t) in c.items()],
        columns=["dataset", "learner", "anchor", "score", "train_time"],
    ).to_csv(csv, index=False)
    conn = ReplayConnector(
        tmp_path / "lab", data=str(csv), dataset="toy", anchor_param="train_size",
        snap=True, time_outcome="train_time",
    )  # fmt: skip
    p = lcdb_problem(1, "toy", CURVES)
    for i, params in enumerate([{"learner": "fast", "train_size": 100},
                                {"learner": "slow", "train_size": 256}]):  # fmt: skip
        obs = conn.lookup(Experiment.create("t", i, params))
        outcomes, cost = p.evaluate(params)
        assert obs.outcomes == outcomes and obs.cost == cost


def test_trace_cost_to_hv95_and_budget_fractions():
    p = lcdb_problem(1, "toy", CURVES)
    run = MORun(p.name, "x", 0, cap=10.0)
    for params in [("fast", 64), ("slow", 64), ("slow", 256), ("slow", 128), ("fast", 128)]:
        outcomes, cost = p.evaluate({"learner": params[0], "train_size": params[1]})
        run.costs.append(cost)
        run.outcomes.append([outcomes["accuracy"], outcomes["train_time"]])
    xs, ys = run.trace(p)
    assert xs == pytest.approx([0.1, 1.1, 5.1, 7.1, 7.3])
    assert ys == sorted(ys) and ys[-1] < p.best_hv  # (0.66, 0.4) is never run
    share = ys[-1] / p.best_hv
    assert run.cost_to_hv(p, share) == pytest.approx(7.3)
    assert math.isinf(run.cost_to_hv(p, 1.0))
    assert run.hv_at(p, 6.0) == pytest.approx(ys[2] / p.best_hv)
    run.cap = 6.0  # results past the budget do not count
    assert run.trace(p)[0] == pytest.approx([0.1, 1.1, 5.1])


def test_rows_medians_censoring_ratios_and_target():
    p = lcdb_problem(1, "toy", CURVES)
    best = [[0.60, 0.1], [0.65, 0.2], [0.66, 0.4], [0.75, 2.0], [0.85, 4.0]]
    runs = []
    for seed in range(3):
        good = MORun(p.name, "sciwm", seed, 20.0, [1.0] * 5, list(best))
        bad = MORun(p.name, "random", seed, 20.0, [1.0] * 5, [[0.6, 4.0]] * 5)
        runs += [good, bad]
    rows = summarize_mo(runs, [p])
    keyed = {(r["method"], r["metric"]): r for r in rows if "budget_fraction" not in r}
    assert keyed[("sciwm", "cost_to_hv95")]["value"] == pytest.approx(5.0)
    assert keyed[("random", "cost_to_hv95")]["value"] is None
    assert keyed[("random", "cost_to_hv95")]["censored"]
    ratio = keyed[("random", "ratio_to_sciwm")]
    assert ratio["bound"] == "lower" and ratio["value"] == pytest.approx(20.0 / 5.0)
    assert keyed[("sciwm", "target_met")]["value"] == 1
    full = [r for r in rows if r["metric"] == "hv_at_budget" and r["budget_fraction"] == 1.0]
    assert {r["method"]: r["value"] for r in full}["sciwm"] == pytest.approx(1.0)
    assert "cost_to_hv95" in table(rows)


def test_branin_currin_campaign_file_parses():
    p = branin_currin()
    spec = parse_spec(tomllib.loads(p.campaign_file("bc", 0, 30.0, 7)))
    assert spec.multi_objective and [o.ref for o in spec.objectives] == [18.0, 6.0]
    assert spec.connector.settings == {"problem": "branin_currin"}
    lcdb = parse_spec(tomllib.loads(lcdb_problem(1, "toy", CURVES).campaign_file("t", 0, 9.0, 5)))
    assert [o.name for o in lcdb.objectives] == ["accuracy", "train_time"]
    assert lcdb.connector.settings["time_outcome"] == "train_time"


@pytest.mark.slow  # a campaign through the loop and a SQLite store: tens of seconds
def test_branin_currin_runs_through_the_loop(tmp_path):
    p = branin_currin()
    run = run_one((p, "sciwm", 0, 30.0, 7, str(tmp_path)))
    assert 0 < len(run.costs) <= 7 and sum(run.costs) <= 30.0  # the gate never overspends
    assert all(y is None or len(y) == 2 for y in run.outcomes)  # None: stopped at its cap
    peer = run_one((p, "random", 0, 30.0, 7, str(tmp_path)))
    assert len(peer.costs) == 7 or sum(peer.costs) >= 30.0
