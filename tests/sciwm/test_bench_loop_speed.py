"""The loop-speed suite: the shipped example campaign, timed per quarter of its results."""

from __future__ import annotations

import tomllib

import pytest

from sciwm.bench.campaign.loop_speed import EXPERIMENTS, TARGET_S, campaign_text, rows_of
from sciwm.spec import parse_spec


def test_it_runs_the_shipped_example_to_100_results_with_a_budget_that_never_binds():
    spec = parse_spec(tomllib.loads(campaign_text(3)), "loop")
    assert spec.stopping.max_experiments == EXPERIMENTS
    assert spec.budget.total >= 1e6
    assert spec.campaign.seed == 3
    assert spec.world_model.type == "surrogates.mlrun.model:MLRunWorldModel"
    assert spec.connector.type == "lab_connectors.replay:ReplayConnector"


def test_rows_split_the_loop_time_by_results_and_check_the_last_quarter():
    # a proposal every 4 results; the loop takes 0.1 s per experiment, then 0.6 s from 75 on
    marks, t = [(0, 0.0, 0.0, 0.0, 0.0)], 0.0
    for k in range(0, 100, 4):
        marks.append((k, t, 0.01 * k, 0.02 * k, 0.001 * k))
        t += 4 * (0.1 if k < 75 else 0.6)
    marks.append((100, t, 1.0, 2.0, 0.1))
    rows = rows_of({"seed": 0, "marks": marks, "experiments": 100, "pretrain_s": 15.0})
    loop = [r for r in rows if r["metric"] == "loop_overhead_s"]
    assert [r["results"] for r in loop] == [[0, 28], [28, 52], [52, 76], [76, 100], [76, 100]]
    assert [r["span"] for r in loop][-2:] == ["quarter", "from_75"]
    assert loop[0]["value"] == pytest.approx(0.1)
    assert loop[0]["fit_s"] == pytest.approx(0.01) and loop[0]["store_s"] == pytest.approx(0.001)
    assert loop[-1]["value"] == pytest.approx(0.6)
    (target,) = [r for r in rows if r["metric"] == "target_met"]
    assert target["value"] == 0 and target["measured"] > TARGET_S
    assert next(r for r in rows if r["metric"] == "pretrain_s")["value"] == 15.0
