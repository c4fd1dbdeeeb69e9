"""Warm starts: placing earlier campaigns' results, and a campaign that starts from one."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
import torch

from flows.loop import CampaignLoop
from scheduler.warm_start import place
from sciwm.errors import SpecError, StoreError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from sciwm.spec import parse_spec
from sciwm.store import RecordStore

pytestmark = pytest.mark.timeout(180)

NEW = SearchSpace(
    (
        Parameter("x", "float", 0.0, 1.0),
        Parameter("y", "float", 0.0, 1.0),
        Parameter("kind", "categorical", choices=("a", "b")),
    )
)


def _old(params: list[dict]) -> list[tuple[Experiment, Observation]]:
    exps = [Experiment.create("old", i, p) for i, p in enumerate(params)]
    return [(e, Observation(e.id, Status.COMPLETED, {"f": 1.0}, cost=1.0)) for e in exps]


def test_place_matches_by_name_fills_values_and_leaves_out_what_does_not_fit():
    old_space = SearchSpace(
        (
            Parameter("x", "float", 0.0, 2.0),
            Parameter("y", "float", 0.0, 1.0),
            Parameter("lr", "float", 0.0, 1.0),
        )
    )
    results = _old(
        [{"x": 0.5, "y": 0.1, "lr": 0.3}, {"x": 1.5, "y": 0.2, "lr": 0.3}]  # x = 1.5 is outside
    )
    placed, left = place(NEW, "old", old_space, results, {"kind": "b"})
    assert left == 1 and len(placed) == 1
    exp, obs = placed[0]
    assert exp.parameters == {"x": 0.5, "y": 0.1, "kind": "b"}  # lr dropped, kind filled
    assert exp.id == results[0][0].id and obs is results[0][1]


def test_place_errors_say_what_is_missing():
    other = SearchSpace((Parameter("z", "float", 0.0, 1.0),))
    with pytest.raises(SpecError, match="shares no parameter"):
        place(NEW, "old", other, [])
    two = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("y", "float", 0.0, 1.0)))
    with pytest.raises(SpecError, match=r"no parameter\(s\) \['kind'\].*values = \{kind"):
        place(NEW, "old", two, [])


CAMPAIGN = """
[campaign]
name = "{name}"
seed = {seed}

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
total = 100.0
unit = "cost"

[connector]
type = "sciwm.testing.simulated_lab:SimulatedLab"
settings = {{ function = "tests.scheduler.fns:bowl" }}

[scheduler]
acquisition = "{acquisition}"
num_restarts = 2
raw_samples = 32
poll_interval_s = 0.0001
restart_after = 0

[stopping]
max_experiments = {max_experiments}
target = {target}
{warm}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    """One SQLite MLflow store for the module (opening one costs seconds)."""
    return RecordStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")


def _run(store: RecordStore, folder: Path, name: str, **kw) -> CampaignLoop:
    fields = {
        "seed": 7,
        "acquisition": "ei_per_cost",
        "max_experiments": 12,
        "warm": "",
        "target": 0.003,
    }
    text = CAMPAIGN.format(name=name, **{**fields, **kw})
    loop = CampaignLoop(parse_spec(tomllib.loads(text)), text, store, folder / name)
    loop.run()
    return loop


def _cost_to_target(loop: CampaignLoop) -> float:
    spent = 0.0
    for rec in loop.state.finished:
        spent += rec.observation.cost
        if rec.observation.outcomes.get("f", 1.0) <= 0.003:
            return spent
    return float("inf")


@pytest.mark.slow  # three campaigns through the loop: about 20-40 s on 2 busy cores
def test_a_campaign_of_the_same_function_makes_the_new_one_cheaper(tmp_path, store):
    # last month's campaign: 20 random experiments on the same bowl
    old = _run(
        store, tmp_path, "bowl-old", acquisition="random", max_experiments=20, seed=1, target=-1
    )
    assert len(old.state.finished) == 20
    cold = _run(store, tmp_path, "bowl-cold")
    warm = _run(store, tmp_path, "bowl-warm", warm='[warm_start]\ncampaigns = ["bowl-old"]')
    # the warm campaign steers from its first proposal: no initial design
    assert warm.agent.initial_experiments == 0 and cold.agent.initial_experiments == 5
    assert _cost_to_target(warm) < _cost_to_target(cold)
    # old results are the model's prior, never the new campaign's measurements
    assert all(r.experiment.campaign == "bowl-warm" for r in warm.state.finished)
    assert warm.result().n_experiments == len(warm.state.finished) < 20
    assert warm.model.summary.extra["warm_start"]["f"] == len(old.state.finished)
    assert set(warm.model.summary.experiment_ids) <= {r.experiment.id for r in warm.state.finished}
    # resumed, the campaign's logged (warm-started) world model loads back and predicts alike
    again = _run(store, tmp_path, "bowl-warm", warm='[warm_start]\ncampaigns = ["bowl-old"]')
    point = [{"x": 0.31, "y": 0.69}]
    a, b = warm.model.predict(point)[0], again.model.predict(point)[0]
    assert b.outcomes["f"].mean == pytest.approx(a.outcomes["f"].mean, abs=1e-6)
    assert len(again.state.finished) == len(warm.state.finished)  # nothing re-run


def test_unknown_warm_start_campaign_is_a_clear_error(tmp_path, store):
    with pytest.raises(StoreError, match="no campaign named 'nope'"):
        _run(store, tmp_path, "bowl-bad", warm='[warm_start]\ncampaigns = ["nope"]')


def test_a_campaign_cannot_warm_start_from_itself():
    text = CAMPAIGN.format(
        name="self",
        seed=0,
        acquisition="ei",
        max_experiments=3,
        warm='[warm_start]\ncampaigns = ["self"]',
        target=0,
    )
    with pytest.raises(SpecError, match="names this campaign itself"):
        parse_spec(tomllib.loads(text))


def _direct_campaign(model, agent, fn, steps: int) -> float:
    """Cost until ``fn`` <= 0.003, proposing with ``agent`` on ``model`` (no store, no lab)."""
    space = agent.space
    exps, obs, spent = [], [], 0.0
    for i in range(steps):
        if model.can_fit(exps, obs):
            model.fit(exps, obs)
        (cand,) = agent.propose(model if model.is_fitted else None, exps, obs, [], 1)
        e = Experiment.create("new", i, space.validate(cand.parameters))
        out = fn(**e.parameters)
        spent += out["cost"]
        exps.append(e)
        obs.append(Observation(e.id, Status.COMPLETED, out["outcomes"], cost=out["cost"]))
        if out["outcomes"]["f"] <= 0.003:
            return spent
    return float("inf")


def test_a_warm_started_model_reaches_the_target_for_less_than_a_cold_one():
    from scheduler.agent import Agent, default_initial_experiments
    from surrogates.gp import GPWorldModel
    from tests.scheduler.fns import bowl

    space = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("y", "float", 0.0, 1.0)))
    gen = torch.Generator().manual_seed(5)
    old = []
    for i, p in enumerate(space.decode(torch.rand(15, 2, generator=gen, dtype=torch.double))):
        e = Experiment.create("old", i, p)
        out = bowl(**p)
        old.append((e, Observation(e.id, Status.COMPLETED, out["outcomes"], cost=out["cost"])))
    costs = {}
    for warm in (False, True):
        model = GPWorldModel(space, ["f"])
        if warm:
            model.warm_start([e for e, _ in old], [o for _, o in old])
        agent = Agent(space, "f", False, num_restarts=2, raw_samples=32, restart_after=0,
                      initial_experiments=default_initial_experiments(model))  # fmt: skip
        costs[warm] = _direct_campaign(model, agent, bowl, 10)
    assert costs[True] < costs[False]
    assert math.isfinite(costs[True])
