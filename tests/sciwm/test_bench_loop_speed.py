"""The loop-speed suite: the shipped example campaign, timed per quarter of its results."""

from __future__ import annotations

import tomllib

import pytest

from sciwm.bench.campaign.loop_speed import (
    EXPERIMENTS,
    TARGET_S,
    campaign_text,
    rows_of,
    write_history,
)
from sciwm.spec import parse_spec
from sciwm.store import RecordStore


@pytest.fixture
def store(tmp_path) -> RecordStore:
    return RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}")


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


def test_a_span_without_experiments_is_not_measured_and_misses_the_target():
    # a campaign resumed from 75 recorded results that ended at once: nothing to time
    marks = [(75, 0.0, 0.0, 0.0, 0.0), (75, 0.5, 0.0, 0.0, 0.0)]
    rows = rows_of({"seed": 0, "marks": marks, "experiments": 75, "history": 75, "pretrain_s": 1.0})
    loop = [r for r in rows if r["metric"] == "loop_overhead_s"]
    assert all(r["value"] is None for r in loop)
    (target,) = [r for r in rows if r["metric"] == "target_met"]
    assert target["value"] == 0 and target["measured"] is None


def test_the_history_is_recorded_replayed_runs_below_the_full_size(store):
    text = campaign_text(0)
    spec = parse_spec(tomllib.loads(text), "loop")
    store.open_campaign(spec, text)
    write_history(spec, store, seed=0, n=12)
    records = store.records(spec.name)
    assert len(records) == 12 and all(r.status.finished for r in records)
    sizes = {r.experiment.parameters["train_size"] for r in records}
    assert max(sizes) < 15406 and min(sizes) >= 64
    pairs = {tuple(sorted(r.experiment.parameters.items())) for r in records}
    assert len(pairs) == 12  # no run twice
    assert all(0 <= r.observation.outcomes["accuracy"] <= 1 for r in records)
    assert all(r.observation.cost > 0 for r in records)
