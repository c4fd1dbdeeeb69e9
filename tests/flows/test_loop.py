"""The campaign loop end to end: real local processes, a real SQLite MLflow store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from flows.campaign import build_loop
from sciwm.experiment import Status
from sciwm.store import RecordStore, default_tracking_uri
from tests.flows.conftest import write_campaign

pytestmark = pytest.mark.timeout(240)


def test_loop_runs_to_the_experiment_cap_and_records_everything(campaign_dir: Path) -> None:
    spec_path = write_campaign(campaign_dir, "loop-e2e", max_experiments=6, initial=3)
    loop = build_loop(spec_path, campaign_dir)
    result = loop.run()

    assert result.n_experiments == 6
    assert result.n_completed == 6
    assert "max" in result.stop_reason.lower() or "experiments" in result.stop_reason.lower()
    uri = default_tracking_uri(campaign_dir)
    assert uri.startswith("sqlite:///") and (campaign_dir / "mlflow.db").is_file()

    records = RecordStore(uri).records("loop-e2e")
    assert [r.experiment.seq for r in records] == list(range(6))
    assert len({r.experiment.id for r in records}) == 6
    for r in records:
        assert r.status is Status.COMPLETED
        assert r.handle is not None
        obs = r.observation
        assert obs is not None and obs.cost is not None and obs.cost > 0
        x, y = r.experiment.parameters["x"], r.experiment.parameters["y"]
        assert obs.outcomes["f"] == pytest.approx(-((x - 0.3) ** 2) - (y - 0.7) ** 2)
        assert obs.cost <= r.experiment.max_cost + 0.5  # the cap the gate reserved
    # after the initial design every proposal carries the world model's prediction
    assert all(r.prediction is None for r in records[:2])
    assert any(r.prediction is not None for r in records[3:])
    assert result.best_value == pytest.approx(
        max(r.observation.outcomes["f"] for r in records)  # type: ignore[union-attr]
    )
    # every experiment is an MLflow run with params, outcome metrics, cost and status
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("loop-e2e")
    runs = client.search_runs([exp.experiment_id], "tags.`sciwm.kind` = 'experiment'")
    assert len(runs) == 6
    for run in runs:
        assert {"x", "y", "kind"} <= set(run.data.params)
        assert {"f", "cost"} <= set(run.data.metrics)
        assert run.data.tags["sciwm.status"] == "completed"
    # the world model was logged and loads back
    model = RecordStore(uri).load_world_model("loop-e2e")
    assert model is not None and model.is_fitted
    assert model.summary is not None and model.summary.n_observations == 6  # the last fit


def test_budget_is_never_exceeded(campaign_dir: Path) -> None:
    spec_path = write_campaign(
        campaign_dir, "loop-budget", budget=1.0, max_experiments=50, initial=2
    )
    result = build_loop(spec_path, campaign_dir).run()
    assert result.spent <= 1.0 + 1e-9
    assert "budget" in result.stop_reason
    assert result.n_experiments >= 2


def test_failures_are_recorded_with_their_error_and_cost(campaign_dir: Path) -> None:
    spec_path = write_campaign(
        campaign_dir,
        "loop-failures",
        function="bowl_with_failures",
        acquisition="random",
        max_experiments=10,
        initial=10,
    )
    result = build_loop(spec_path, campaign_dir).run()
    records = RecordStore(default_tracking_uri(campaign_dir)).records("loop-failures")
    assert len(records) == result.n_experiments == 10
    failed = [r for r in records if r.status is Status.FAILED]
    expected_failures = [
        r
        for r in records
        if r.experiment.parameters["x"] > 0.75 or r.experiment.parameters["y"] < 0.15
    ]
    assert {r.experiment.id for r in failed} == {r.experiment.id for r in expected_failures}
    assert failed, "the seeded design should hit the failing region"
    for r in failed:
        assert r.observation is not None and r.observation.error
        if r.experiment.parameters["x"] > 0.75:
            assert "the lab broke" in r.observation.error
        else:
            assert "non-finite" in r.observation.error
    assert result.n_failed == len(failed)
    assert math.isfinite(result.spent)


def test_scheduler_settings_reach_the_agent(campaign_dir: Path) -> None:
    from scheduler.agent import DEFAULT_COST_EXPONENT

    plain = write_campaign(campaign_dir, "plain")
    assert build_loop(plain, campaign_dir).agent.cost_exponent == DEFAULT_COST_EXPONENT
    tuned = write_campaign(campaign_dir, "tuned", acquisition="gittins")
    text = tuned.read_text().replace(
        'acquisition = "gittins"', 'acquisition = "gittins"\ncost_exponent = 1.0'
    )
    tuned.write_text(text)
    agent = build_loop(tuned, campaign_dir).agent
    assert agent.acquisition == "gittins" and agent.cost_exponent == 1.0


def test_cost_cooling_weighs_the_cost_term_by_the_budget_left(
    campaign_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = write_campaign(campaign_dir, "cooling", budget=30.0)
    spec_path.write_text(
        spec_path.read_text().replace("[scheduler]\n", "[scheduler]\ncost_cooling = true\n", 1)
    )
    loop = build_loop(spec_path, campaign_dir)
    assert loop.spec.scheduler.cost_cooling
    seen: list[float] = []
    monkeypatch.setattr(loop.agent, "propose", lambda *a, **k: seen.append(k["cost_weight"]))
    loop.propose(1)  # nothing spent: the full cost term
    monkeypatch.setattr(type(loop), "spent", property(lambda self: 12.0))
    loop.propose(1)
    assert seen == [1.0, pytest.approx(1.0 - 12.0 / 30.0)]
    plain = build_loop(write_campaign(campaign_dir, "no-cooling"), campaign_dir)
    monkeypatch.setattr(plain.agent, "propose", lambda *a, **k: seen.append(k["cost_weight"]))
    plain.propose(1)
    assert seen[-1] == 1.0  # off by default


def test_slot_cost_is_the_budget_left_per_experiment_left(campaign_dir: Path) -> None:
    spec_path = write_campaign(campaign_dir, "slots", budget=30.0, max_experiments=6)
    loop = build_loop(spec_path, campaign_dir)
    assert loop.slot_cost() == pytest.approx(30.0 / 6)
