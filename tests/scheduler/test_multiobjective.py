"""Several objectives: Pareto fronts and hypervolumes in closed form, the agent's front."""

from __future__ import annotations

import time

import pytest
import torch

from scheduler.acquisition import LogEIPerCost, build_acquisition
from scheduler.agent import Agent
from scheduler.multiobjective import Objectives
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.pareto import hypervolume, hypervolume_trace, pareto_mask, reference_point
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))

#: f1 = -(x - 0.2)^2, f2 = -(x - 0.8)^2, both maximised: the Pareto set is x in [0.2, 0.8].
TWO = Objectives(("f1", "f2"), (True, True))


def _f(x: float) -> dict[str, float]:
    return {"f1": -((x - 0.2) ** 2), "f2": -((x - 0.8) ** 2)}


def _data(xs, cost=lambda x: 1.0):
    exps, obs = [], []
    for i, x in enumerate(xs):
        e = Experiment.create("mo", i, {"x": x})
        exps.append(e)
        obs.append(Observation(e.id, Status.COMPLETED, _f(x), cost=cost(x)))
    return exps, obs


def _fitted(exps, obs) -> GPWorldModel:
    model = GPWorldModel(SPACE, ["f1", "f2"])
    model.fit(exps, obs)
    return model


# -- closed form ------------------------------------------------------------------------------
def test_pareto_mask_of_the_closed_form_case():
    xs = torch.linspace(0, 1, 21, dtype=torch.double)
    Y = torch.stack([-((xs - 0.2) ** 2), -((xs - 0.8) ** 2)], dim=-1)
    mask = pareto_mask(Y, [True, True])
    expected = (xs >= 0.2 - 1e-12) & (xs <= 0.8 + 1e-12)
    assert torch.equal(mask, expected)
    # minimising the negated objectives is the same front
    assert torch.equal(pareto_mask(-Y, [False, False]), expected)


def test_hypervolume_in_closed_form():
    # a staircase of points (t, 1 - t) with ref (0, 0): sum of the rectangles it adds
    ts = [0.25, 0.5, 0.75]
    Y = torch.tensor([[t, 1 - t] for t in ts], dtype=torch.double)
    expected = 0.25 * 0.75 + (0.5 - 0.25) * 0.5 + (0.75 - 0.5) * 0.25
    assert hypervolume(Y, [True, True], [0.0, 0.0]) == pytest.approx(expected)
    # a minimised second objective, the reference point flipped with it
    Ym = Y * torch.tensor([1.0, -1.0], dtype=torch.double)
    assert hypervolume(Ym, [True, False], [0.0, 0.0]) == pytest.approx(expected)
    assert hypervolume_trace(Y, [True, True], [0.0, 0.0])[0] == pytest.approx(0.25 * 0.75)
    # a reference point that every result fails to beat: no hypervolume
    assert hypervolume(Y, [True, True], [1.0, 1.0]) == 0.0


def test_reference_point_is_inferred_beyond_the_front():
    Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-5.0, -5.0]], dtype=torch.double)
    ref = reference_point(Y, [True, True])
    assert ref == pytest.approx([-0.1, -0.1])  # the front's nadir minus 10% of its range
    assert reference_point(Y, [True, True], [-2.0, None]) == pytest.approx([-2.0, -0.1])
    assert reference_point(Y[:0], [True, True]) is None


def test_objectives_validate():
    with pytest.raises(SpecError, match="unique"):
        Objectives(("a", "a"), (True, True))
    with pytest.raises(SpecError):
        Objectives(("a", "b"), (True,))


# -- the agent --------------------------------------------------------------------------------
def test_agent_proposes_on_the_pareto_set():
    exps, obs = _data([0.0, 0.05, 0.95, 1.0, 0.1])
    model = _fitted(exps, obs)
    agent = Agent(
        SPACE,
        "f1",
        True,
        acquisition="ei",
        objectives=TWO,
        initial_experiments=3,
        num_restarts=4,
        raw_samples=64,
    )
    (cand,) = agent.propose(model, exps, obs, [], 1)
    assert 0.2 <= cand.parameters["x"] <= 0.8
    assert cand.acquisition_value is not None and cand.prediction is not None


def test_hypervolume_acquisition_prefers_the_gap_and_divides_by_cost():
    exps, obs = _data([0.0, 0.1, 0.9, 1.0, 0.2, 0.8], cost=lambda x: 1.0 + 9.0 * x)
    model = _fitted(exps, obs)
    X = torch.tensor([[[0.5]], [[0.0]]], dtype=torch.double)
    X_base = SPACE.encode([e.parameters for e in exps])
    Y_base = torch.tensor([[o.outcomes["f1"], o.outcomes["f2"]] for o in obs], dtype=torch.double)
    with torch.no_grad():
        ehvi = build_acquisition(
            model, "f1", True, X_base, None, kind="ei", objectives=TWO, Y_baseline=Y_base
        )
        per_cost = build_acquisition(
            model,
            "f1",
            True,
            X_base,
            None,
            kind="ei_per_cost",
            cost_exponent=1.0,
            objectives=TWO,
            Y_baseline=Y_base,
        )
        gain = ehvi(X)
        assert gain[0] > gain[1]  # the middle of the front, not a dominated end
        assert isinstance(per_cost, LogEIPerCost)
        post = model.log_cost_posterior(X)
        log_cost = (post.mean + 0.5 * post.variance).reshape(-1)  # log of the expected cost
        assert torch.allclose(per_cost(X), gain - log_cost, atol=1e-6)


def test_parego_beyond_three_objectives():
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("z", "float", 0.0, 1.0)))
    names = ("a", "b", "c", "d")
    exps, obs = [], []
    gen = torch.Generator().manual_seed(0)
    for i, (x, z) in enumerate(torch.rand(6, 2, generator=gen, dtype=torch.double).tolist()):
        e = Experiment.create("p", i, {"x": x, "z": z})
        exps.append(e)
        outs = {"a": x, "b": 1 - x, "c": z, "d": 1 - z + x * z}
        obs.append(Observation(e.id, Status.COMPLETED, outs, cost=1.0))
    model = GPWorldModel(space, list(names))
    model.fit(exps, obs)
    objectives = Objectives(names, (True,) * 4)
    acqf = build_acquisition(
        model,
        "a",
        True,
        space.encode([e.parameters for e in exps]),
        None,
        kind="ei",
        objectives=objectives,
    )
    assert type(acqf).__name__ == "qLogNParEGO"
    t0 = time.perf_counter()
    agent = Agent(
        space,
        "a",
        True,
        acquisition="ei_per_cost",
        objectives=objectives,
        initial_experiments=3,
        num_restarts=2,
        raw_samples=32,
    )
    (cand,) = agent.propose(model, exps, obs, [], 1)
    assert cand.acquisition_value is not None
    assert time.perf_counter() - t0 < 30


def test_gittins_refuses_several_objectives():
    with pytest.raises(SpecError, match="gittins"):
        Agent(SPACE, "f1", True, acquisition="gittins", objectives=TWO)
