"""The LCDB replay campaigns of ``sciwm bench campaign``: problems, the replay lab, the peers,
the product's campaign files and a tiny product run, the rows and targets."""

from __future__ import annotations

import importlib.util
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from sciwm.bench.campaign.lcdb_product import lcdb_campaign_file, run_lcdb_product
from sciwm.bench.campaign.lcdb_replay import (
    BudgetSpent,
    Fit,
    LcdbProblem,
    ReplayLab,
    build_problem,
    folds,
)
from sciwm.bench.campaign.lcdb_runner import LcdbRun
from sciwm.bench.campaign.peers_mf import learner_ranking, run_peer
from sciwm.bench.campaign.product import TimedStore
from sciwm.bench.campaign.real_report import cost_to_target, lcdb_rows, regret_at
from sciwm.lcdb.cache import load_slice
from sciwm.spec import parse_spec

SLICE = Path(__file__).parents[1] / "surrogates" / "mlrun" / "data" / "lcdb_slice.parquet"
ANCHORS = (64, 128, 256, 512, 1024, 2048)


def _problem() -> LcdbProblem:
    """Four learners: ``slow`` is best, ``cheap`` is within the tolerance and 10x cheaper."""
    spec = {  # learner: (final score, final train time)
        "slow": (0.90, 10.0),
        "cheap": (0.895, 1.0),
        "bad": (0.70, 0.5),
        "mid": (0.85, 4.0),
    }
    curves = {}
    for k, (score, t) in spec.items():
        curves[k] = {a: (score - 0.1 * math.log2(2048 / a) / 5, t * a / 2048) for a in ANCHORS}
    meta = load_slice(SLICE).meta("cpu_act")
    return LcdbProblem(1, "toy", 0, curves, 2048, meta)


def test_problem_oracle_target_ladder_and_snapping():
    p = _problem()
    assert p.best == pytest.approx(0.90)
    assert p.target == pytest.approx(0.89)
    assert p.oracle_learner == "cheap"
    assert p.oracle_cost == pytest.approx(1.0)
    assert p.ladder(3) == [128, 512, 2048]  # 2048 / 3 -> 512, 512 / 3 -> 128, then < 64
    assert p.snap("cheap", 1500) == 1024
    assert p.snap("cheap", 10) is None
    assert p.low_anchor() == 128


def test_replay_lab_charges_truncates_at_the_cap_and_stops_at_the_target():
    p = _problem()
    lab = ReplayLab(p, cap=3.0)
    assert lab.fit("mid", 512) == pytest.approx(p.curves["mid"][512][0])
    assert lab.spent == pytest.approx(1.0)
    with pytest.raises(BudgetSpent):
        lab.fit("slow", 2048)  # 10 s does not fit in the 2 s left: charged to the cap, lost
    assert lab.spent == pytest.approx(3.0)
    assert math.isnan(lab.fits[-1].score)
    lab = ReplayLab(p, cap=100.0)
    with pytest.raises(BudgetSpent):
        lab.fit("cheap", 2048)
    assert lab.fits[-1].score >= p.target


def test_peers_pay_for_what_they_run():
    p = _problem()
    fits, why = run_peer("oracle", p, 0, 100.0, {})
    assert why == "target reached" and fits[-1].spent == pytest.approx(p.oracle_cost)
    fits, _ = run_peer("random", p, 3, 100.0, {})
    assert len({f.learner for f in fits}) == len(fits)
    assert all(f.anchor == 2048 for f in fits)
    fits, _ = run_peer("topk_low_fidelity", p, 0, 100.0, {})
    assert [f.anchor for f in fits[:4]] == [128] * 4
    assert fits[4].learner == "slow"  # best at the small size goes first at full size
    meta = {"a": {"cheap": (0.9, 1.0), "slow": (0.91, 100.0)}, "b": {"cheap": (0.8, 1.0)}}
    assert learner_ranking(meta)[0] == "cheap"
    fits, _ = run_peer("average_rank", p, 0, 100.0, meta)
    assert fits[0].learner == "cheap" and len(fits) == 1


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="needs optuna")
def test_hyperband_runs_rungs_and_keeps_to_the_cap():
    p = _problem()
    fits, why = run_peer("hyperband", p, 0, 30.0, {})
    assert {f.anchor for f in fits} <= set(p.ladder(3))
    assert fits[-1].spent <= 30.0 + 1e-9
    assert why in ("target reached", "budget spent")


def _run(method: str, fits: list[Fit], problem: str = "lcdb:1", seed: int = 0) -> LcdbRun:
    return LcdbRun(
        problem, method, seed, 100.0, 1.0, 0.9, 0.7, 0.89, 2048, tuple(fits), "x", 1.0, {}
    )


def test_cost_to_target_and_regret_count_full_size_results_within_budget():
    fits = [
        Fit("mid", 2048, 0.85, 4.0, 4.0),
        Fit("slow", 512, 0.95, 1.0, 5.0),
        Fit("cheap", 2048, 0.895, 1.0, 6.0),
    ]
    run = _run("random", fits)
    assert cost_to_target(run) == 6.0  # the small-size 0.95 does not count
    assert regret_at(run, 2.0) == pytest.approx(0.9 - 0.7)  # nothing at full size yet
    assert regret_at(run, 5.0) == pytest.approx(0.05)
    assert regret_at(run, 6.0) == pytest.approx(0.005)
    over = _run("random", [Fit("cheap", 2048, 0.895, 1.0, 101.0)])
    assert math.isinf(cost_to_target(over))


def test_rows_medians_reached_fraction_and_targets():
    runs = []
    for seed in range(3):
        runs.append(_run("oracle", [Fit("cheap", 2048, 0.895, 1.0, 1.0)], seed=seed))
        runs.append(_run("random", [Fit("cheap", 2048, 0.895, 1.0, 5.0 + seed)], seed=seed))
        runs.append(_run("sciwm", [Fit("cheap", 2048, 0.895, 1.0, 1.2)], seed=seed))
    runs.append(_run("sciwm", [Fit("bad", 2048, 0.7, 1.0, 1.0)], seed=3))
    rows = lcdb_rows(runs)
    get = {(r["problem"], r["method"], r["metric"], r.get("budget_x")): r for r in rows}
    assert get[("lcdb", "random", "cost_to_target_x_oracle", None)]["value"] == 6.0
    assert get[("lcdb", "sciwm", "reached_fraction", None)]["value"] == 0.75
    assert get[("lcdb", "sciwm", "regret_at_budget", 2.0)]["value"] == pytest.approx(0.005)
    assert get[("lcdb", "sciwm", "virtual_fraction", None)]["missing"] is True
    vs = get[("lcdb:1", "sciwm", "ratio_to_best_peer", None)]
    assert vs["peer"] == "random" and vs["value"] == pytest.approx(1.2 / 6.0)
    met = {r["criterion"]: r["value"] for r in rows if r["metric"] == "target_met"}
    assert met["within_1.5x_oracle"] == 1
    assert met["below_every_peer"] == 1
    assert met["reached_0.95_by_20x"] == 0
    assert met["virtual_wrong_fraction_le_0.1"] is None


def test_the_gate_variant_measures_what_the_shipped_defaults_do_not_record():
    """Virtual answers and early stops are counted on ``sciwm_gate`` where ``sciwm`` (virtual
    answers off, no learning curves) has none, and the target rows say so."""
    none = {"virtual": 0, "virtual_wrong": 0, "stopped_early": 0, "stopped_wrongly": 0}
    gate = {"virtual": 8, "virtual_wrong": 1, "stopped_early": 4, "stopped_wrongly": 1}
    runs = [_run("oracle", [Fit("cheap", 2048, 0.895, 1.0, 1.0)])]
    runs.append(replace(_run("sciwm", [Fit("cheap", 2048, 0.895, 1.0, 1.2)]), figures=none))
    runs.append(replace(_run("sciwm_gate", [Fit("cheap", 2048, 0.895, 1.0, 1.3)]), figures=gate))
    rows = lcdb_rows(runs)
    met = {r["criterion"]: r for r in rows if r["metric"] == "target_met"}
    wrong = met["virtual_wrong_fraction_le_0.1"]
    assert wrong["measured_on"] == "sciwm_gate" and wrong["measured"] == pytest.approx(1 / 8)
    assert wrong["value"] == 0
    stopped = met["stopped_wrongly_fraction_le_0.05"]
    assert stopped["measured_on"] == "sciwm_gate" and stopped["measured"] == pytest.approx(0.25)
    assert met["within_1.5x_oracle"]["measured_on"] == "sciwm"
    peers = met["below_every_peer"]["measured"]
    assert "sciwm_gate" not in peers  # a variant of the product is not its peer


def test_campaign_files_parse_and_exclude_nothing_but_the_fold():
    p = _problem()
    for method in ("sciwm", "sciwm_no_world_model"):
        text = lcdb_campaign_file(p, method, 0, 50.0, SLICE)
        spec = parse_spec(tomllib.loads(text), method)
        assert spec.space()["train_size"].fidelity
        assert spec.budget.total == 50.0
    text = lcdb_campaign_file(p, "sciwm", 0, 50.0, SLICE)
    assert 'pretrain_data = "' in text and "dataset_meta" in text
    shipped = parse_spec(tomllib.loads(text), "sciwm")
    gate = parse_spec(tomllib.loads(lcdb_campaign_file(p, "sciwm_gate", 0, 50.0, SLICE)), "gate")
    assert not shipped.scheduler.virtual and "curve" not in shipped.connector.settings
    assert gate.scheduler.virtual and gate.connector.settings["curve"] is True
    assert gate.world_model == shipped.world_model
    fold_of = folds([f"d{i}" for i in range(12)], 6)
    assert sorted(fold_of.values()) == sorted(list(range(6)) * 2)


def test_build_problem_from_a_slice():
    data = load_slice(SLICE)
    p = build_problem(data, "cpu_act", 2)
    assert p.top == data.runs[data.runs.dataset == "cpu_act"].anchor.max()
    assert p.oracle_cost > 0 and p.best >= p.target


@pytest.mark.slow
def test_a_product_campaign_runs_through_the_loop_on_replayed_costs(tmp_path):
    p = _problem()
    rows = [
        {"dataset": "toy", "learner": k, "anchor": a, "score": s, "train_time": t}
        for k, c in p.curves.items()
        for a, (s, t) in c.items()
    ]
    csv = tmp_path / "toy.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    store = TimedStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = run_lcdb_product(
        p,
        "sciwm_no_world_model",
        0,
        30.0,
        store=store,
        root=tmp_path,
        pretrain_data=None,
        max_experiments=4,
        replay_data=str(csv),
    )
    assert 1 <= len(run.fits) <= 4
    assert run.fits[-1].spent == pytest.approx(sum(f.cost for f in run.fits))
    if hasattr(store, "virtual_answers"):  # the product records virtual answers: counted
        assert run.figures["virtual"] == len(store.virtual_answers("lcdb-1-sciwm_no_world_model-0"))
    else:  # it does not: the figure is missing, never made up
        assert run.figures["virtual"] is None


def test_problems_flag_is_refused_outside_the_campaign_suite(tmp_path, capsys):
    from sciwm.cli import main

    code = main(["bench", "mlrun", "--out", str(tmp_path / "r.json"), "--problems", "lcdb"])
    assert code != 0
    assert "campaign suite only" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_unknown_problem_names_the_groups():
    from sciwm.bench.campaign import run

    with pytest.raises(ValueError, match="lcdb"):
        run(problems=["nope"], progress=False)


def test_result_files_round_trip_and_merge(tmp_path):
    from sciwm.bench.campaign.real_files import merge, runs_from_rows
    from sciwm.bench.common import make_result, save_result

    lost = Fit("slow", 2048, math.nan, 3.0, 4.0)
    first = [
        _run("random", [Fit("cheap", 2048, 0.895, 1.0, 5.0)]),
        _run("sciwm", [lost, Fit("cheap", 2048, 0.895, 1.0, 5.0)]),
    ]
    again = [_run("sciwm", [Fit("cheap", 2048, 0.895, 1.0, 1.5)])]
    for name, runs in (("a.json", first), ("b.json", again)):
        save_result(tmp_path / name, make_result("campaign", lcdb_rows(runs), {}))
    back = runs_from_rows(__import__("json").loads((tmp_path / "a.json").read_text())["rows"])
    assert [cost_to_target(r) for r in back] == [cost_to_target(r) for r in first]
    assert math.isnan(back[1].fits[0].score)
    out = merge(tmp_path / "m.json", [tmp_path / "a.json", tmp_path / "b.json"])
    get = {(r["method"], r["metric"]): r["value"] for r in out["rows"] if r["problem"] == "lcdb"}
    assert get[("sciwm", "cost_to_target_x_oracle")] == 1.5  # the later file's run wins
    assert get[("random", "cost_to_target_x_oracle")] == 5.0
    assert (tmp_path / "m_lcdb_regret.png").stat().st_size > 1000


def test_virtual_answers_and_early_stops_are_counted_from_what_the_product_recorded():
    figures = {
        "virtual": 2,
        "virtual_wrong": 1,
        "virtual_saved_cost": 3.0,
        "stopped_early": 1,
        "stopped_wrongly": 0,
    }
    fits = (Fit("cheap", 2048, 0.895, 1.0, 1.0), Fit("mid", 2048, 0.85, 4.0, 5.0))
    run = LcdbRun("lcdb:1", "sciwm", 0, 100.0, 1.0, 0.9, 0.7, 0.89, 2048, fits, "x", 1.0, figures)
    rows = {r["metric"]: r for r in lcdb_rows([run]) if r["problem"] == "lcdb"}
    assert rows["virtual_fraction"]["value"] == pytest.approx(2 / 4)  # 2 of 2 real + 2 virtual
    assert rows["virtual_wrong_fraction"]["value"] == pytest.approx(0.5)
    assert rows["stopped_early_fraction"]["value"] == pytest.approx(0.5)
    assert rows["stopped_wrongly_fraction"]["value"] == 0.0
    assert rows["virtual_saved_cost"]["value"] == 3.0
