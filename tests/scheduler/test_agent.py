"""The BO agent: initial design, cost-aware acquisition, pending points, minimisation."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model

import scheduler.agent_optimize as agent_optimize
from scheduler.acquisition import LogEIPerCost, build_acquisition, cooled_exponent
from scheduler.agent import DEFAULT_INITIAL_EXPERIMENTS, Agent, default_initial_experiments
from scheduler.restart import DEFAULT_RESTART_AFTER, default_restart_after
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel
from tests.flows.prior_double import PriorWorldModelDouble

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
SPACE_2D = SearchSpace((Parameter("a", "float", -1.0, 1.0), Parameter("b", "int", 0, 10)))


def _shrunk(space: SearchSpace = SPACE, **kwargs) -> Agent:
    """An agent with a shrunk optimiser (2 restarts, 32 raw samples) to keep tests fast."""
    kwargs.setdefault("objective", "y")
    kwargs.setdefault("maximize", True)
    return Agent(space, num_restarts=2, raw_samples=32, initial_experiments=3, **kwargs)


def _data(xs, ys, costs, space: SearchSpace = SPACE):
    exps, obs = [], []
    for i, (x, y, c) in enumerate(zip(xs, ys, costs, strict=True)):
        e = Experiment.create("t", i, {"x": x})
        exps.append(e)
        obs.append(Observation(e.id, Status.COMPLETED, {"y": y}, cost=c))
    return exps, obs


def _fitted(exps, obs, space: SearchSpace = SPACE) -> GPWorldModel:
    model = GPWorldModel(space, ["y"])
    model.fit(exps, obs)
    return model


# -- initial design ----------------------------------------------------------------------------
def test_initial_design_is_seeded_sobol():
    first = _shrunk(SPACE_2D, seed=3).propose(None, [], [], [], 5)
    again = _shrunk(SPACE_2D, seed=3).propose(None, [], [], [], 5)
    other = _shrunk(SPACE_2D, seed=4).propose(None, [], [], [], 5)
    assert [c.parameters for c in first] == [c.parameters for c in again]
    assert [c.parameters for c in first] != [c.parameters for c in other]
    assert all(c.prediction is None and c.acquisition_value is None for c in first)
    assert all(isinstance(c.parameters["b"], int) for c in first)
    engine = torch.quasirandom.SobolEngine(2, scramble=True, seed=3)
    assert first[0].parameters == SPACE_2D.decode(engine.draw(1, dtype=torch.double))[0]


def test_initial_design_resumes_the_sequence():
    full = [c.parameters for c in _shrunk(SPACE_2D, seed=1).propose(None, [], [], [], 5)]
    exps = [Experiment.create("t", i, p) for i, p in enumerate(full[:2])]
    obs = [Observation(e.id, Status.FAILED, cost=1.0) for e in exps]
    # Two finished (failed) and one running: the next two are points 3 and 4 of the sequence.
    nxt = _shrunk(SPACE_2D, seed=1).propose(None, exps, obs, [full[2]], 2)
    assert [c.parameters for c in nxt] == full[3:5]


def test_random_acquisition_is_reproducible():
    a = _shrunk(SPACE_2D, acquisition="random", seed=2).propose(None, [], [], [], 3)
    b = _shrunk(SPACE_2D, acquisition="random", seed=2).propose(None, [], [], [], 3)
    assert [c.parameters for c in a] == [c.parameters for c in b]
    assert len({tuple(c.parameters.values()) for c in a}) == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"acquisition": "ucb"}, {"initial_experiments": -1}, {"num_restarts": 0}],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(SpecError):
        Agent(SPACE, "y", True, **kwargs)


# -- a world model that predicts before any result ---------------------------------------------
BOWL = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("y", "float", 0.0, 1.0)))


def test_initial_design_default_is_none_for_a_model_that_predicts_without_results() -> None:
    assert default_initial_experiments(PriorWorldModelDouble(BOWL, ["f"])) == 0
    assert default_initial_experiments(GPWorldModel(BOWL, ["f"])) == DEFAULT_INITIAL_EXPERIMENTS
    assert default_initial_experiments(None) == DEFAULT_INITIAL_EXPERIMENTS == 5


def test_restarts_default_to_off_for_a_model_that_predicts_without_results() -> None:
    assert default_restart_after(PriorWorldModelDouble(BOWL, ["f"])) == 0
    assert default_restart_after(GPWorldModel(BOWL, ["f"])) == DEFAULT_RESTART_AFTER
    assert default_restart_after(None) == DEFAULT_RESTART_AFTER == 10


@pytest.mark.parametrize("acquisition", ["ei_per_cost", "ei", "gittins"])
def test_prior_model_steers_the_first_proposal(acquisition: str) -> None:
    model = PriorWorldModelDouble(BOWL, ["f"])
    model.fit([], [])
    agent = Agent(
        BOWL,
        "f",
        True,
        acquisition=acquisition,
        initial_experiments=0,
        num_restarts=2,
        raw_samples=32,
    )
    (cand,) = agent.propose(model, [], [], [], 1)
    # the bowl's maximum is at (0.3, 0.7); a Sobol point would land anywhere
    assert abs(cand.parameters["x"] - 0.3) < 0.05 and abs(cand.parameters["y"] - 0.7) < 0.05
    assert cand.prediction is not None and cand.acquisition_value is not None
    # with the default design the same model only predicts the seeded Sobol points
    (sobol,) = Agent(BOWL, "f", True, num_restarts=2, raw_samples=32).propose(model, [], [], [], 1)
    assert sobol.acquisition_value is None and sobol.prediction is not None
    assert sobol.parameters != cand.parameters


# -- the cost-aware acquisition ----------------------------------------------------------------
# Two equally good peaks, mirror images about x = 0.5; cost exp(2x) grows to the right.
XS = [0.05, 0.2, 0.35, 0.65, 0.8, 0.95]
YS = [0.2, 1.0, 0.4, 0.4, 1.0, 0.2]
COSTS = [math.exp(2 * x) for x in XS]


def test_ei_per_cost_prefers_the_cheaper_of_two_equally_good_regions():
    exps, obs = _data(XS, YS, COSTS)
    model = _fitted(exps, obs)
    X_base = SPACE.encode([e.parameters for e in exps])
    # The data are symmetric about 0.5, so the GP posterior and EI are: EI(x) = EI(1 - x).
    # log(EI/cost) differs between x and 1 - x only by the log-cost term, so the cheaper
    # (left) mirror image always wins, and the optimum lies left of 0.5.
    x = torch.tensor([[[0.17]], [[0.83]]], dtype=torch.double)
    with torch.no_grad():
        ei = build_acquisition(model, "y", True, X_base, None, kind="ei")(x)
        eipc = build_acquisition(model, "y", True, X_base, None, kind="ei_per_cost")(x)
        post = model.log_cost_posterior(x)
        log_cost = (post.mean + 0.5 * post.variance).reshape(-1)  # log of the expected cost
    # Equal up to the Monte-Carlo error of qLogNEI, small next to the cost term (~1.3).
    assert float(ei[0]) == pytest.approx(float(ei[1]), abs=0.02)
    assert float(eipc[0] - eipc[1]) == pytest.approx(float(log_cost[1] - log_cost[0]), abs=0.02)
    assert float(log_cost[1] - log_cost[0]) == pytest.approx(2 * 0.66, rel=0.1)

    [cand] = _shrunk(seed=0).propose(model, exps, obs, [], 1)
    assert cand.parameters["x"] < 0.5
    assert cand.prediction is not None and cand.acquisition_value is not None
    assert cand.prediction.cost.mean < math.exp(1.0)


class _LogNormalCost(Model):
    """Test double of a log-cost model: mean 0, variance ``4 x`` (the cost of the right half
    of the line is known poorly)."""

    num_outputs = 1

    def posterior(self, X, output_indices=None, observation_noise=False, posterior_transform=None):  # noqa: ANN001, ANN201
        from botorch.posteriors import GPyTorchPosterior
        from gpytorch.distributions import MultivariateNormal

        var = 4.0 * X[..., 0]
        return GPyTorchPosterior(MultivariateNormal(torch.zeros_like(var), torch.diag_embed(var)))


class _FlatLogEI(AcquisitionFunction):
    """Test double of a log-EI: 0 everywhere, so the cost term alone decides."""

    def forward(self, X):  # noqa: ANN001, ANN201
        return torch.zeros(X.shape[:-2], dtype=X.dtype)


def test_ei_per_cost_divides_by_the_expected_cost_not_the_median():
    """Two points of the same median cost (1): the one whose cost is uncertain has the larger
    expected cost, exp(s^2 / 2), and the lower value; a batch pays the sum of its points'."""
    cost = _LogNormalCost()
    acqf = LogEIPerCost(_FlatLogEI(cost), cost, cost_exponent=1.0)
    x = torch.tensor([[[0.1]], [[0.6]]], dtype=torch.double)
    with torch.no_grad():
        v = acqf(x)
        both = acqf(x.reshape(1, 2, 1))
    torch.testing.assert_close(v, torch.tensor([-0.2, -1.2], dtype=torch.double))
    assert float(v[0]) > float(v[1])
    expected = -math.log(math.exp(0.2) + math.exp(1.2))
    assert float(both[0]) == pytest.approx(expected, rel=1e-9)


def test_cooled_exponent_is_the_exponent_times_the_budget_left():
    assert cooled_exponent(0.5, 1.0) == 0.5
    assert cooled_exponent(0.5, 0.4) == pytest.approx(0.2)
    assert cooled_exponent(0.5, -0.3) == 0.0  # overspent: plain EI
    assert cooled_exponent(0.5, 1.7) == 0.5  # never more than the exponent set


def test_a_fully_cooled_cost_term_proposes_what_plain_ei_proposes():
    """With the budget spent (weight 0) ``ei_per_cost`` is log EI alone: the same point as
    ``acquisition = "ei"`` with the same seed; with the full weight it takes the cheap peak."""
    exps, obs = _data(XS, YS, COSTS)
    model = _fitted(exps, obs)
    [plain] = _shrunk(acquisition="ei", seed=3).propose(model, exps, obs, [], 1)
    [cooled] = _shrunk(seed=3).propose(model, exps, obs, [], 1, cost_weight=0.0)
    [cost_aware] = _shrunk(seed=3).propose(model, exps, obs, [], 1, cost_weight=1.0)
    assert cooled.parameters == plain.parameters
    assert cooled.acquisition_value == pytest.approx(plain.acquisition_value, abs=1e-9)
    assert cost_aware.parameters["x"] < 0.5


def test_cost_blind_ei_goes_either_way_but_near_a_peak():
    exps, obs = _data(XS, YS, COSTS)
    [cand] = _shrunk(acquisition="ei").propose(_fitted(exps, obs), exps, obs, [], 1)
    assert min(abs(cand.parameters["x"] - 0.2), abs(cand.parameters["x"] - 0.8)) < 0.15


def test_pending_points_are_avoided():
    exps, obs = _data([0.0, 0.3, 0.5, 0.7, 1.0], [0.0, 0.5, 1.0, 0.5, 0.0], [1, 2, 3, 2, 1])
    model = _fitted(exps, obs)
    agent = _shrunk(acquisition="ei")
    [alone] = agent.propose(model, exps, obs, [], 1)
    [beside] = agent.propose(model, exps, obs, [alone.parameters], 1)
    assert abs(beside.parameters["x"] - alone.parameters["x"]) > 0.02
    # A batch of two is chosen greedily, the first point pending for the second.
    batch = agent.propose(model, exps, obs, [], 2)
    assert batch[0].parameters == alone.parameters
    assert batch[1].parameters == beside.parameters


def test_minimisation():
    xs = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ys = [math.sin(2 * math.pi * x) for x in xs]  # max near 0.25, min near 0.75
    exps, obs = _data(xs, ys, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    model = _fitted(exps, obs)
    [lo] = _shrunk(maximize=False).propose(model, exps, obs, [], 1)
    [hi] = _shrunk(maximize=True).propose(model, exps, obs, [], 1)
    assert 0.5 < lo.parameters["x"] < 1.0
    assert 0.0 < hi.parameters["x"] < 0.5


def test_never_proposes_a_point_already_run():
    space = SearchSpace((Parameter("x", "int", 0, 4),))
    exps = [Experiment.create("t", i, {"x": i}) for i in range(4)]
    obs = [
        Observation(e.id, Status.COMPLETED, {"y": float(i)}, cost=1.0 + i)
        for i, e in enumerate(exps)
    ]
    model = _fitted(exps, obs, space)
    [cand] = _shrunk(space).propose(model, exps, obs, [], 1)
    assert cand.parameters == {"x": 4}


def test_a_failing_optimiser_falls_back_to_a_random_point(monkeypatch, caplog):
    exps, obs = _data(XS, YS, COSTS)
    model = _fitted(exps, obs)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(agent_optimize, "build_acquisition", broken)
    with caplog.at_level(logging.WARNING, logger="scheduler.agent"):
        [cand] = _shrunk().propose(model, exps, obs, [], 1)
    assert 0.0 <= cand.parameters["x"] <= 1.0
    assert cand.acquisition_value is None and cand.prediction is not None
    assert "RuntimeError: boom" in caplog.text and "random point" in caplog.text
