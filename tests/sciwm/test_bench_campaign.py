"""The campaign benchmark: a tiny run through the product's loop, and the summary statistics."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
import torch

from sciwm.bench import campaign
from sciwm.bench.campaign import METHODS, PROBLEMS, RunResult, Settings, cost_of, summarize
from sciwm.bench.campaign.product import TimedStore, campaign_file, run_product
from sciwm.bench.common import format_table
from sciwm.experiment import Status
from sciwm.spec import SchedulerSpec, parse_spec
from sciwm.testing.problems import problem_named

#: Small optimiser settings that keep the product's runs fast in tests.
FAST = {"num_restarts": 2, "raw_samples": 16, "initial_experiments": 2}


def test_cost_surface_spans_ten_times_and_is_log_linear():
    u = torch.tensor([[0.0, 0.3, 0.0], [1.0, 0.7, 1.0], [0.5, 0.1, 0.5], [0.2, 0.9, 0.6]])
    c = cost_of(u)
    assert c[0] == pytest.approx(1.0)
    assert c[1] == pytest.approx(10.0)
    assert c[2] == pytest.approx(10**0.5)
    assert math.log10(c[3]) == pytest.approx((0.2 + 0.6) / 2)


def test_targets_are_one_percent_of_the_value_range():
    branin = next(p for p in PROBLEMS if p.name == "branin")
    assert branin.target() == pytest.approx(0.397887 + 0.01 * (308.129096 - 0.397887))
    for p in PROBLEMS:
        fn = p.make()
        assert p.space().dim == p.dim == fn.dim
        assert float(fn.optimal_value) < p.target() < p.f_max


def _result(method: str, seed: int, cost: float, cap: float = 100.0) -> RunResult:
    n = None if math.isinf(cost) else 3
    return RunResult("p", method, seed, cap, cost, n, 3, 10.0, 0.0, 1.0)


def test_summary_medians_quartiles_and_censoring():
    problem = campaign.Problem("p", "Branin", 2, 1.0, cap=100.0, cap_quick=10.0)
    results = [_result("sciwm", s, c) for s, c in enumerate([10.0, 20.0, 30.0, 40.0, math.inf])]
    results += [
        _result("gp_cost_blind", s, c) for s, c in enumerate([30.0, 40.0, 60.0, 80.0, 90.0])
    ]
    results += [_result("random", s, c, 1e4) for s, c in enumerate([50.0] + [math.inf] * 4)]
    rows = summarize(results, [problem])
    get = {(r["method"], r["metric"]): r for r in rows}
    assert get[("sciwm", "cost_to_target")]["value"] == 30.0
    assert get[("sciwm", "cost_to_target_q25")]["value"] == 20.0
    assert get[("sciwm", "cost_to_target_q75")]["value"] == 40.0
    assert get[("sciwm", "cost_to_target")]["censored"] is False
    assert get[("sciwm", "reached_fraction")]["value"] == pytest.approx(0.8)
    assert get[("gp_cost_blind", "ratio_to_sciwm")]["value"] == pytest.approx(2.0)
    assert get[("gp_cost_blind", "ratio_to_sciwm")]["bound"] == "exact"
    # Random's median is censored: the ratio is the lower bound (its cap) / sciwm's median.
    assert get[("random", "cost_to_target")]["censored"] is True
    assert get[("random", "cost_to_target")]["cap"] == 1e4
    assert get[("random", "ratio_to_sciwm")]["value"] == pytest.approx(1e4 / 30.0)
    assert get[("random", "ratio_to_sciwm")]["bound"] == "lower"
    checks = {r["criterion"]: r["value"] for r in campaign.target_check(rows, [problem])}
    assert checks == {"below_gp_cost_blind": 1, "5x_below_random": 1}
    slow = [
        _result(m, 0, c) for m, c in (("sciwm", 50.0), ("gp_cost_blind", 40.0), ("random", 200.0))
    ]
    checks = {
        r["criterion"]: r["value"]
        for r in campaign.target_check(summarize(slow, [problem]), [problem])
    }
    assert checks == {"below_gp_cost_blind": 0, "5x_below_random": 0}


def test_where_the_optimum_is_dear_sciwm_must_be_no_dearer_than_plain_ei():
    dear = campaign.Problem("p", "Hartmann", 6, 1.0, cap=100.0, cap_quick=10.0, flip=(0,))

    def checks(sciwm: float, ei: float) -> dict[str, int]:
        results = [_result("sciwm", 0, sciwm), _result("sciwm_ei", 0, ei)]
        rows = campaign.target_check(summarize(results, [dear]), [dear])
        return {r["criterion"]: r["value"] for r in rows}

    assert checks(40.0, 50.0)["at_most_sciwm_ei"] == 1
    assert checks(40.0, 40.0)["at_most_sciwm_ei"] == 1
    assert checks(50.0, 40.0)["at_most_sciwm_ei"] == 0
    assert checks(math.inf, 40.0)["at_most_sciwm_ei"] == 0  # sciwm never got there
    assert checks(math.inf, math.inf)["at_most_sciwm_ei"] == 0  # censored both: not shown
    assert checks(40.0, math.inf)["at_most_sciwm_ei"] == 1


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TimedStore:
    """One SQLite MLflow store for the module (opening one costs seconds)."""
    return TimedStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


def test_product_run_goes_through_the_loop_and_the_store(tmp_path, store):
    branin = problem_named("branin")
    s = Settings(scheduler=FAST)
    r = run_product(branin, 3, 12.0, s, method="sciwm", store=store, root=tmp_path / "labs")
    name = "branin-sciwm-3"
    records = store.records(name)
    assert len(records) == r.experiments >= 2
    assert all(rec.status.finished and rec.observation is not None for rec in records)
    costs = [rec.observation.cost for rec in records]
    assert r.spent == pytest.approx(sum(costs)) and r.spent <= 12.0
    for rec in records:  # the lab's numbers: the problem's value and cost surface
        if rec.observation.status is Status.COMPLETED:
            value, cost = branin.evaluate(rec.experiment.parameters)
            assert rec.observation.outcomes["f"] == pytest.approx(value)
            assert rec.observation.cost == pytest.approx(cost)
    assert store.campaign_spec(name).connector.type == "sciwm.testing.simulated_lab:SimulatedLab"
    assert 0 < r.store_s < r.wall_s and 0 <= r.fit_s < r.wall_s and 0 < r.propose_s < r.wall_s


def test_campaign_file_keeps_the_shipped_scheduler_defaults():
    hartmann = problem_named("hartmann6")
    spec = parse_spec(tomllib.loads(campaign_file(hartmann, 7, 200.0)))
    assert spec.scheduler == SchedulerSpec(poll_interval_s=spec.scheduler.poll_interval_s)
    assert spec.connector.settings == {"problem": "hartmann6"}
    assert spec.world_model.type == "gp" and spec.campaign.seed == 7
    assert spec.budget.total == 200.0 and spec.stopping.target == hartmann.target()
    assert [p.name for p in spec.parameters] == [f"x{i}" for i in range(1, 7)]
    ei = parse_spec(tomllib.loads(campaign_file(hartmann, 7, 200.0, method="sciwm_ei")))
    assert ei.scheduler.acquisition == "ei" and ei.name == "hartmann6-sciwm_ei-7"


def test_smoke_run_writes_tidy_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = campaign.run(
        quick=True,
        seeds=1,
        out=out,
        progress=False,
        problems=["branin"],
        caps={"branin": 12.0},
        settings=Settings(workers=1, scheduler=FAST),
    )
    assert json.loads(out.read_text()) == result
    assert set(result) == {"suite", "rows", "config", "env"}
    assert result["suite"] == "campaign"
    assert result["config"]["seeds"] == 1
    assert {"python", "torch", "botorch", "cpu", "torch_threads", "cuda"} <= set(result["env"])
    rows = result["rows"]
    for row in rows:
        assert {"problem", "method", "metric", "value"} <= set(row)
    methods = result["config"]["methods"]
    assert set(methods) <= set(METHODS) and {"sciwm", "sciwm_ei", "random"} <= set(methods)
    keyed = {(r["method"], r["metric"]): r for r in rows if r["problem"] == "branin"}
    for m in methods:
        assert (m, "cost_to_target") in keyed
        assert (m, "reached_fraction") in keyed
        assert (m, "cost_to_target_q25") in keyed
        assert keyed[(m, "loop_s_per_experiment")]["value"] > 0
    for m in methods[1:]:
        assert (m, "ratio_to_sciwm") in keyed
    for m in ("sciwm", "sciwm_ei"):  # the product's runs time their store and their fits
        store = keyed[(m, "store_s_per_experiment")]
        loop = keyed[(m, "loop_s_per_experiment")]
        assert 0 < store["value"] < loop["value"]
        assert store["experiments"] == loop["experiments"]
        assert keyed[(m, "fit_s_per_experiment")]["value"] < loop["value"]
    assert ("random", "store_s_per_experiment") not in keyed
    runs = [r for r in rows if r["metric"] == "cost_to_target_run"]
    assert len(runs) == len(methods)
    for r in runs:
        assert r["value"] is None or r["value"] <= r["cap"]
        if r["method"] in ("sciwm", "sciwm_ei"):  # the gate never lets it overspend
            assert r["spent"] <= r["cap"]
    printed = capsys.readouterr().out
    assert "cost_to_target" in printed and "store_s_per_experiment" in printed


def test_table_is_pivoted_by_problem_and_method():
    rows = [
        {"problem": "a", "method": "m1", "metric": "x", "value": 1.0},
        {"problem": "a", "method": "m2", "metric": "x", "value": 2.5},
        {"problem": "a", "method": "m1", "metric": "y", "value": None},
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["problem", "method", "x", "y"]
    assert lines[2].split() == ["a", "m1", "1", "-"]
    assert lines[3].split() == ["a", "m2", "2.5"]


def test_gp_cost_blind_runs_with_the_products_effort(tmp_path, store):
    from sciwm.bench.campaign.baselines import product_effort
    from sciwm.bench.campaign.product import TimedLoop

    for seed, scheduler in enumerate(({}, FAST), start=10):
        text = campaign_file(problem_named("branin"), seed, 10.0, scheduler=scheduler)
        spec = parse_spec(tomllib.loads(text))
        agent = TimedLoop(spec, text, store, tmp_path / spec.name).agent
        effort = product_effort(Settings(scheduler=scheduler))
        assert effort == (agent.initial_experiments, agent.num_restarts, agent.raw_samples)
    assert product_effort(Settings(scheduler=FAST)) == (2, 2, 16)
