"""Outcome constraints: probability of feasibility in closed form, the agent stays feasible."""

from __future__ import annotations

import math

import pytest
import torch

from scheduler.acquisition import build_acquisition
from scheduler.agent import Agent
from scheduler.constraints import (
    FeasibilityWeighted,
    LogProbabilityOfFeasibility,
    OutcomeConstraint,
    feasibility,
)
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.pareto import feasible
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
#: y = x is maximised; load = x must stay <= 0.5: the constrained optimum is x = 0.5.
LOAD = OutcomeConstraint("load", "<=", 0.5)


def _data(xs):
    exps, obs = [], []
    for i, x in enumerate(xs):
        e = Experiment.create("c", i, {"x": x})
        exps.append(e)
        obs.append(Observation(e.id, Status.COMPLETED, {"y": x, "load": x}, cost=1.0 + x))
    return exps, obs


def _fitted(xs) -> tuple[GPWorldModel, list, list]:
    exps, obs = _data(xs)
    model = GPWorldModel(SPACE, ["y", "load"])
    model.fit(exps, obs)
    return model, exps, obs


def test_probability_of_feasibility_in_closed_form():
    model, _, _ = _fitted([0.0, 0.3, 0.6, 0.9, 1.0])
    X = torch.tensor([[[0.1]], [[0.5]], [[0.95]]], dtype=torch.double)
    pf = feasibility(model, [LOAD])
    with torch.no_grad():
        got = pf(X).exp()
        post = model.posterior(X, "load")
        mean, std = post.mean.reshape(-1), post.variance.sqrt().reshape(-1)
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = normal.cdf((0.5 - mean) / std)
    assert torch.allclose(got, expected, atol=1e-9)
    assert got[0] > 0.9 and got[2] < 0.1
    # ">=" is the complement
    above = LogProbabilityOfFeasibility(
        [model.outcome_model("load")], [OutcomeConstraint("load", ">=", 0.5)]
    )
    with torch.no_grad():
        assert torch.allclose(above(X).exp(), 1 - expected, atol=1e-9)


def test_feasibility_weighting_moves_the_proposal_to_the_feasible_side():
    model, exps, obs = _fitted([0.05, 0.2, 0.35, 0.7, 0.9])
    kwargs = dict(acquisition="ei", initial_experiments=3, num_restarts=4, raw_samples=64)
    free = Agent(SPACE, "y", True, **kwargs).propose(model, exps, obs, [], 1)[0]
    held = Agent(SPACE, "y", True, constraints=[LOAD], **kwargs).propose(model, exps, obs, [], 1)[0]
    assert free.parameters["x"] > 0.9  # unconstrained: the top end
    assert 0.3 < held.parameters["x"] <= 0.6  # constrained: below the bound, near it


def test_without_a_feasible_result_the_acquisition_is_feasibility_alone():
    model, exps, _ = _fitted([0.6, 0.7, 0.8, 0.9])
    empty = torch.empty(0, 1, dtype=torch.double)
    acqf = build_acquisition(model, "y", True, empty, None, kind="ei", constraints=[LOAD])
    assert isinstance(acqf, LogProbabilityOfFeasibility)
    X_base = SPACE.encode([e.parameters for e in exps])
    weighted = build_acquisition(model, "y", True, X_base, None, kind="ei", constraints=[LOAD])
    assert isinstance(weighted, FeasibilityWeighted)


def test_feasible_checks_every_constraint():
    cons = [LOAD, OutcomeConstraint("y", ">=", 0.1)]
    assert feasible({"y": 0.3, "load": 0.3}, cons)
    assert not feasible({"y": 0.05, "load": 0.3}, cons)
    assert not feasible({"y": 0.3, "load": 0.7}, cons)
    assert not feasible({"y": 0.3}, cons)  # a missing constrained outcome is infeasible
    assert not feasible({"y": 0.3, "load": math.nan}, cons)
    assert str(LOAD) == "load <= 0.5"


def test_bad_constraints_raise():
    with pytest.raises(SpecError, match="op"):
        OutcomeConstraint("load", "<", 1.0)
    with pytest.raises(SpecError, match="gittins"):
        Agent(SPACE, "y", True, acquisition="gittins", constraints=[LOAD])
