"""A world model that predicts before any result steers the loop from the first proposal."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.campaign import build_loop
from scheduler.agent import DEFAULT_INITIAL_EXPERIMENTS
from scheduler.gate import DEFAULT_SAFETY_FACTOR
from scheduler.restart import DEFAULT_RESTART_AFTER
from sciwm.store import RecordStore, default_tracking_uri
from tests.flows.conftest import write_campaign
from tests.flows.prior_double import COST_MEDIAN

pytestmark = pytest.mark.timeout(240)

PRIOR = "tests.flows.prior_double:PriorWorldModelDouble"


def test_prior_model_is_fitted_and_steers_before_any_result(campaign_dir: Path) -> None:
    # budget 20, parallelism 2: the default reservation would be 5 and the floor 2.5
    path = write_campaign(campaign_dir, "prior", budget=20.0, initial=None, world_model=PRIOR)
    loop = build_loop(path, campaign_dir)
    assert loop.agent.initial_experiments == 0  # left out: no Sobol design for this model
    assert loop.step()
    assert loop.state.fits == 1 and loop.model.is_fitted
    records = RecordStore(default_tracking_uri(campaign_dir)).records("prior")
    assert len(records) == 2
    for r in records:
        # the prediction reached the record and the gate's reservation (not the default 5)
        assert r.prediction is not None
        assert r.prediction.cost.mean == pytest.approx(COST_MEDIAN * 1.005, rel=1e-3)
        upper = r.prediction.cost.upper
        assert r.experiment.max_cost == pytest.approx(DEFAULT_SAFETY_FACTOR * upper)
    # the acquisition, not a space-filling design, chose the first point: the model's optimum
    first = records[0].experiment.parameters
    assert abs(first["x"] - 0.3) < 0.1 and abs(first["y"] - 0.7) < 0.1

    # resumed, the logged model is back before any step, and every record has a prediction
    loop.connector.close()
    again = build_loop(path, campaign_dir)
    assert again.model.is_fitted and len(again.state.running) + len(again.state.finished) == 2
    result = again.run()
    assert result.n_experiments == 6
    records = RecordStore(default_tracking_uri(campaign_dir)).records("prior")
    assert all(r.prediction is not None for r in records)


def test_explicit_initial_design_is_kept_with_a_prior_model(campaign_dir: Path) -> None:
    prior = write_campaign(campaign_dir, "prior-sobol", initial=2, world_model=PRIOR)
    gp = write_campaign(campaign_dir, "gp-sobol", initial=2)
    loop, baseline = build_loop(prior, campaign_dir), build_loop(gp, campaign_dir)
    assert loop.agent.initial_experiments == 2
    assert loop.step() and baseline.step()
    store = RecordStore(default_tracking_uri(campaign_dir))
    ours, sobol = store.records("prior-sobol"), store.records("gp-sobol")
    # the same seeded Sobol points as the GP's design, now with the model's predictions
    assert [r.experiment.parameters for r in ours] == [r.experiment.parameters for r in sobol]
    assert all(r.prediction is not None for r in ours)
    assert all(r.prediction is None for r in sobol)


def test_initial_design_default_depends_on_the_world_model(campaign_dir: Path) -> None:
    gp = write_campaign(campaign_dir, "gp-default", initial=None)
    assert build_loop(gp, campaign_dir).agent.initial_experiments == DEFAULT_INITIAL_EXPERIMENTS
    prior = write_campaign(campaign_dir, "prior-default", initial=None, world_model=PRIOR)
    assert build_loop(prior, campaign_dir).agent.initial_experiments == 0


def test_restarts_default_to_off_for_a_model_that_predicts_before_any_result(
    campaign_dir: Path,
) -> None:
    # a restart would drop what the campaign taught a pretrained model; a GP keeps them
    gp = write_campaign(campaign_dir, "gp-restarts", initial=None)
    assert build_loop(gp, campaign_dir).agent.restart_after == DEFAULT_RESTART_AFTER == 10
    prior = write_campaign(campaign_dir, "prior-restarts", initial=None, world_model=PRIOR)
    assert build_loop(prior, campaign_dir).agent.restart_after == 0
    # the campaign file's own value wins
    path = write_campaign(campaign_dir, "prior-restarts-set", initial=None, world_model=PRIOR)
    path.write_text(path.read_text().replace("[scheduler]\n", "[scheduler]\nrestart_after = 4\n"))
    assert build_loop(path, campaign_dir).agent.restart_after == 4
