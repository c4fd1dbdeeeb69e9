"""The gain-per-cost stopping rule: its check, the expected gain it uses, and the loop."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
import torch

from flows.loop import CampaignLoop
from scheduler.stopping import StoppingRule, expected_gain_per_cost
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from sciwm.spec import parse_spec
from sciwm.store import RecordStore
from surrogates.gp import GPWorldModel

pytestmark = pytest.mark.timeout(120)


def test_check_gain_needs_k_rounds_in_a_row_below_the_threshold():
    rule = StoppingRule(100, min_gain_per_cost=0.1, gain_rounds=2)
    assert rule.check_gain([0.05]) is None
    assert rule.check_gain([0.05, 0.2]) is None
    reason = rule.check_gain([0.5, 0.05, 0.01])
    assert reason is not None and "below 0.1 for 2 rounds" in reason
    assert rule.check_gain([0.05, None, 0.01]) is None  # a round without a model breaks the run
    assert rule.check_gain([0.05, 0.1]) is None  # equal is not below


def test_check_gain_off_by_default_and_bad_settings_rejected():
    assert StoppingRule(100).check_gain([0.0, 0.0, 0.0, 0.0]) is None
    with pytest.raises(SpecError, match="min_gain_per_cost"):
        StoppingRule(100, min_gain_per_cost=-1.0)
    with pytest.raises(SpecError, match="gain_rounds"):
        StoppingRule(100, min_gain_per_cost=1.0, gain_rounds=0)


def _fitted_gp() -> GPWorldModel:
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    xs = [0.05, 0.2, 0.4, 0.6, 0.8, 0.95]
    exps = [Experiment.create("g", i, {"x": x}) for i, x in enumerate(xs)]
    obs = [
        Observation(e.id, Status.COMPLETED, {"f": math.sin(6 * x)}, cost=1.0 + 3 * x)
        for e, x in zip(exps, xs, strict=True)
    ]
    model = GPWorldModel(space, ["f"])
    model.fit(exps, obs)
    return model


@pytest.mark.parametrize("maximize", [True, False])
def test_expected_gain_is_closed_form_ei_over_median_cost(maximize):
    model = _fitted_gp()
    X = torch.tensor([[0.1], [0.3], [0.7]], dtype=torch.double)
    best = 0.5
    got = expected_gain_per_cost(model, "f", maximize, X, best)
    post = model.posterior(X.unsqueeze(-2), "f")
    for i in range(3):
        mu = float(post.mean.detach().reshape(-1)[i])
        sd = math.sqrt(float(post.variance.detach().reshape(-1)[i]))
        g = (mu - best) if maximize else (best - mu)
        z = g / sd
        ei = g * 0.5 * (1 + math.erf(z / math.sqrt(2))) + sd * math.exp(-z * z / 2) / math.sqrt(
            2 * math.pi
        )
        log_c = model.log_cost_posterior(X[i : i + 1].unsqueeze(-2)).mean.detach()
        cost = math.exp(float(log_c))
        assert float(got[i]) == pytest.approx(ei / cost, rel=1e-6)
        assert float(got[i]) >= 0


CAMPAIGN = """
[campaign]
name = "{name}"
seed = 3

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "y"
type = "float"
low = 0.0
high = 1.0

[[objectives]]
name = "f"
direction = "minimize"

[budget]
total = 1000.0
unit = "cost"

[connector]
type = "sciwm.testing.simulated_lab:SimulatedLab"
settings = {{ function = "tests.scheduler.fns:bowl" }}

[scheduler]
initial_experiments = 3
num_restarts = 2
raw_samples = 32
poll_interval_s = 0.0001
restart_after = 0

[stopping]
max_experiments = 40
{stopping}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    """One SQLite MLflow store for the module (opening one costs seconds)."""
    return RecordStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


def test_loop_stops_when_the_gain_per_cost_stays_low_and_records_why(
    tmp_path: Path, store: RecordStore
):
    text = CAMPAIGN.format(name="gain-stop", stopping="min_gain_per_cost = 1e9\ngain_rounds = 2")
    spec = parse_spec(tomllib.loads(text))
    loop = CampaignLoop(spec, text, store, tmp_path / "lab")
    result = loop.run()
    # the initial design (3 rounds the model does not steer), a first round below the
    # threshold that is dispatched, and a second that stops the campaign
    assert result.n_experiments == 4
    assert result.stop_reason.startswith("expected gain per unit cost below 1e+09 for 2 rounds")
    assert [g is None for g in loop.state.gains] == [True, True, True, False, False]
    assert store.stop_reason("gain-stop") == result.stop_reason


def test_loop_without_the_rule_runs_on(tmp_path: Path, store: RecordStore):
    text = CAMPAIGN.format(name="gain-off", stopping="").replace(
        "max_experiments = 40", "max_experiments = 5"
    )
    loop = CampaignLoop(parse_spec(tomllib.loads(text)), text, store, tmp_path / "lab")
    result = loop.run()
    assert result.n_experiments == 5 and loop.state.gains == []
    assert "maximum of 5" in (store.stop_reason("gain-off") or "")
