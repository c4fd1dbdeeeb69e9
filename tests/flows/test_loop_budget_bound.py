"""A proposal too dear for the budget left does not end a campaign while cheaper ones exist."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from flows.loop import CampaignLoop
from sciwm.experiment import Status
from sciwm.spec import parse_spec
from sciwm.store import RecordStore
from tests.flows.dear_double import cost_of

pytestmark = pytest.mark.timeout(240)

CAMPAIGN = """
[campaign]
name = "{name}"
seed = 0

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[objectives]]
name = "f"
direction = "maximize"

[budget]
total = {budget}
unit = "s"

[connector]
type = "sciwm.testing.simulated_lab:SimulatedLab"
settings = {{ function = "tests.flows.dear_double:dear_best" }}

[world_model]
type = "tests.flows.dear_double:DearBestDouble"

[scheduler]
acquisition = "ei"
num_restarts = 2
raw_samples = 32
poll_interval_s = 0.0001

[stopping]
max_experiments = {cap}
"""


def _loop(tmp_path: Path, name: str, budget: float, cap: int = 8) -> CampaignLoop:
    text = CAMPAIGN.format(name=name, budget=budget, cap=cap)
    spec = parse_spec(tomllib.loads(text), f"<{name}>")
    store = RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return CampaignLoop(spec, text, store, tmp_path / name)


def test_a_dear_first_proposal_gives_way_to_affordable_ones(tmp_path: Path) -> None:
    loop = _loop(tmp_path, "dear-first", budget=40.0)
    loop.fit()
    # the acquisition's own best is the dearest experiment, far over the whole budget
    [best] = loop.propose(1)
    assert best.prediction is not None and best.prediction.cost.mean > 40.0
    result = loop.run()

    records = loop.state.finished
    assert len(records) >= 2  # before: it ended at once, "budget left cannot cover ..."
    assert all(r.status is Status.COMPLETED for r in records)
    assert result.spent <= 40.0 + 1e-9
    for r in records:  # each one the gate could pay for when it was proposed
        assert r.observation is not None
        assert r.observation.cost == pytest.approx(cost_of(r.experiment.parameters["x"]))
        assert r.observation.cost <= r.experiment.max_cost + 1e-9
    # the first is the best affordable one of the budget: f = x with cost(x) <= 40
    first = records[0].experiment.parameters["x"]
    assert 0.6 < first and cost_of(first) <= 40.0
    assert loop.state.budget_bound
    # it ends only when no new experiment fits what is left, and says which is cheapest
    left = 40.0 - result.spent
    assert "cannot cover another experiment: the cheapest one not yet run" in result.stop_reason
    predicted = float(result.stop_reason.rsplit("predicted to cost ", 1)[1].split()[0])
    assert predicted > left


def test_nothing_affordable_ends_the_campaign_naming_the_cheapest(tmp_path: Path) -> None:
    loop = _loop(tmp_path, "nothing-fits", budget=0.5)  # every experiment costs >= 1
    result = loop.run()
    assert result.n_experiments == 0 and result.spent == 0.0
    reason = result.stop_reason
    assert reason.startswith("the 0.5 s of budget left cannot cover another experiment")
    assert "the cheapest one not yet run (x=" in reason
    predicted = float(reason.rsplit("predicted to cost ", 1)[1].split()[0])
    assert 1.0 <= predicted < 1.5  # the model's cheapest point, near x = 0
    assert RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}").records("nothing-fits") == []
