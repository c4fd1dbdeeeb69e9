"""Restarts of a stalled search: epoch boundaries, and the agent's fresh design after one."""

from __future__ import annotations

import math

import pytest
import torch

from scheduler.agent import Agent
from scheduler.restart import epoch_start
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))


# -- epoch boundaries --------------------------------------------------------------------------
def test_no_restart_when_switched_off_or_still_improving():
    stalled = [5.0, 4.0, 3.0] + [3.0] * 20
    assert epoch_start(stalled, initial_experiments=3, restart_after=0) == 0
    improving = [10.0 - i for i in range(30)]
    assert epoch_start(improving, initial_experiments=3, restart_after=4) == 0


def test_epoch_ends_after_restart_after_results_without_a_real_improvement():
    # best 1.0 at index 2; then 4 results that improve by less than 1% of the range (9.0)
    values = [10.0, 5.0, 1.0, 1.0, 0.95, 2.0, 3.0]
    assert epoch_start(values, initial_experiments=3, restart_after=4) == 7
    assert epoch_start(values[:6], initial_experiments=3, restart_after=4) == 0
    # a real improvement (by more than 1% of the range) resets the count
    assert epoch_start([*values[:5], 0.5, 3.0], initial_experiments=3, restart_after=4) == 0


def test_epoch_needs_its_initial_design_first_and_failures_do_not_count():
    values = [1.0, 2.0, None, 3.0, None, 4.0]
    # 4 completed results, none better than the first: not enough for 2 initial + 3 stalled
    assert epoch_start(values, initial_experiments=2, restart_after=3) == 0
    assert epoch_start([*values, 5.0], initial_experiments=2, restart_after=3) == 7
    # the second epoch starts its count afresh
    assert epoch_start([*values, 5.0, 0.0, 9.0], initial_experiments=2, restart_after=3) == 7


# -- the agent ---------------------------------------------------------------------------------
def _stalled_history(n: int):
    """``n`` results of a minimisation whose best (0.0, at the 4th result) never improves."""
    exps, obs = [], []
    for i in range(n):
        x = 0.2 + 0.001 * i if i >= 3 else [0.1, 0.5, 0.9][i]
        y = 1.0 if i < 3 else 0.0  # no improvement after the 4th result
        e = Experiment.create("t", i, {"x": x})
        exps.append(e)
        obs.append(Observation(e.id, Status.COMPLETED, {"y": y}, cost=1.0))
    return exps, obs


def test_agent_restarts_with_the_next_sobol_points_and_then_a_fresh_model():
    # initial 3 + 5 without improvement after the best at index 3: the 9th result ends it
    exps, obs = _stalled_history(9)
    model = GPWorldModel(SPACE, ["y"])
    model.fit(exps, obs)
    agent = Agent(
        SPACE,
        "y",
        maximize=False,
        initial_experiments=3,
        restart_after=5,
        num_restarts=2,
        raw_samples=32,
        seed=7,
    )
    (cand,) = agent.propose(model, exps, obs, [], 1)
    engine = torch.quasirandom.SobolEngine(1, scramble=True, seed=7)
    engine.fast_forward(9)
    assert cand.parameters == SPACE.decode(engine.draw(1, dtype=torch.double))[0]
    assert cand.acquisition_value is None  # a design point, not an acquisition optimum
    assert cand.prediction is not None  # still predicted by the model of every result
    # after three results in the new epoch the agent models them alone
    more_e, more_o = [], []
    for i, x in enumerate([0.7, 0.8, 0.95]):
        e = Experiment.create("t", 9 + i, {"x": x})
        more_e.append(e)
        more_o.append(Observation(e.id, Status.COMPLETED, {"y": 5.0 + x}, cost=1.0))
    model.fit(exps + more_e, obs + more_o)
    seen = agent._epoch_model(model, more_e, more_o, 9)
    assert seen is not None and seen.summary.experiment_ids == [e.id for e in more_e]
    # the epoch's model is kept: asked again on the same results it is not refitted, and a
    # further result refits that same model
    assert agent._epoch_model(model, more_e, more_o, 9) is seen
    e = Experiment.create("t", 12, {"x": 0.6})
    grown = agent._epoch_model(
        model, [*more_e, e], [*more_o, Observation(e.id, Status.COMPLETED, {"y": 5.6}, cost=1.0)], 9
    )
    assert grown is seen and seen.summary.experiment_ids[-1] == e.id
    assert agent._epoch_model(model, more_e, more_o, 8) is not seen  # another epoch
    (nxt,) = agent.propose(model, exps + more_e, obs + more_o, [], 1)
    assert nxt.acquisition_value is not None and math.isfinite(nxt.acquisition_value)
    # the acquisition ran on the new epoch's model, which sees values rising with x: it looks
    # below the epoch's best (0.7), not next to the old stalled best (x ~ 0.2; a model of
    # every result proposes x ~ 0.14 there)
    assert 0.4 < nxt.parameters["x"] < 0.7


def test_agent_without_restart_keeps_the_whole_history():
    # initial 3 + 5 without improvement after the best at index 3: the 9th result ends it
    exps, obs = _stalled_history(9)
    model = GPWorldModel(SPACE, ["y"])
    model.fit(exps, obs)
    agent = Agent(SPACE, "y", maximize=False, initial_experiments=3, num_restarts=2, raw_samples=32)
    (cand,) = agent.propose(model, exps, obs, [], 1)
    assert cand.prediction is not None


def test_negative_restart_after_is_rejected():
    with pytest.raises(SpecError, match="restart_after"):
        Agent(SPACE, "y", maximize=False, restart_after=-1)
