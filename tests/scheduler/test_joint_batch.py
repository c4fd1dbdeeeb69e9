"""Large campaigns: a batch optimised jointly, and the baseline kept to the best results."""

from __future__ import annotations

import math

import pytest
import torch

from scheduler.acquisition import build_acquisition
from scheduler.agent import BASELINE_MAX, Agent
from scheduler.joint_batch import optimize_joint
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("y", "float", 0.0, 1.0)))


def _history(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    params = SPACE.decode(torch.rand(n, 2, generator=gen, dtype=torch.double))
    exps = [Experiment.create("j", i, p) for i, p in enumerate(params)]
    obs = [
        Observation(
            e.id, Status.COMPLETED, {"f": -((p["x"] - 0.3) ** 2) - (p["y"] - 0.6) ** 2}, 1 + p["x"]
        )
        for e, p in zip(exps, params, strict=True)
    ]
    return exps, obs


def _agent(**kw) -> Agent:
    return Agent(SPACE, "f", True, num_restarts=2, raw_samples=32, restart_after=0, **kw)


def test_past_the_threshold_the_batch_is_one_joint_optimum():
    exps, obs = _history(12)
    model = GPWorldModel(SPACE, ["f"])
    model.fit(exps, obs)
    agent = _agent(joint_batch_above=10)
    assert agent._joint(3, 12) and not agent._joint(1, 12) and not agent._joint(3, 9)
    batch = agent.propose(model, exps, obs, [], 3)
    X = SPACE.encode([c.parameters for c in batch])
    # the same optimum as the joint optimiser on the agent's acquisition, best point first
    X_base = SPACE.encode([e.parameters for e in exps])
    seed = agent.seed * 1_000_003 + len(exps)
    acqf = build_acquisition(model, "f", True, X_base, None, kind="ei_per_cost",
                             cost_exponent=agent.cost_exponent, seed=seed)  # fmt: skip
    X_ref, values = optimize_joint(acqf, SPACE, 3, 2, 32, seed)
    assert torch.allclose(X, X_ref)
    got = [c.acquisition_value for c in batch]
    assert got == values and all(math.isfinite(v) for v in got)
    assert got == sorted(got, reverse=True)
    assert len({tuple(x.tolist()) for x in X}) == 3
    assert all(c.prediction is not None for c in batch)


def test_joint_batch_is_off_for_zero_and_bad_values_rejected():
    assert not _agent(joint_batch_above=0)._joint(8, 10_000)
    assert not _agent(joint_batch_above=5, acquisition="gittins")._joint(8, 100)
    with pytest.raises(SpecError, match="joint_batch_above"):
        _agent(joint_batch_above=-1)


def test_the_baseline_is_the_best_results_past_its_cap():
    exps, obs = _history(BASELINE_MAX + 40)
    value = {e.id: o.outcomes["f"] for e, o in zip(exps, obs, strict=True)}
    ranked = sorted(value.values())
    for maximize, kth in ((True, ranked[-BASELINE_MAX]), (False, ranked[BASELINE_MAX - 1])):
        best = Agent(SPACE, "f", maximize, restart_after=0)._best(exps, exps, obs)
        assert len(best) == BASELINE_MAX
        kept = [value[e.id] for e in best]
        assert (min(kept) if maximize else max(kept)) == kth
