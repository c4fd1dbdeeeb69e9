"""The Pandora's-box Gittins index: its equation, its cost awareness, pending points, the agent."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from scheduler.acquisition import build_acquisition
from scheduler.agent import Agent
from scheduler.gittins import (
    ADAPTIVE_FRACTION,
    ADAPTIVE_SAMPLES,
    GittinsIndex,
    adaptive_lambda,
    solve_log_h,
)
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
NORMAL = Normal(torch.tensor(0.0, dtype=torch.double), torch.tensor(1.0, dtype=torch.double))


def _h(z: torch.Tensor) -> torch.Tensor:
    """``h(z) = z Phi(z) + phi(z)`` in closed form (fine for moderate ``z``)."""
    return z * NORMAL.cdf(z) + NORMAL.log_prob(z).exp()


def test_solve_log_h_inverts_h_with_the_implicit_gradient():
    log_r = torch.tensor([-12.0, -3.0, -0.5, 0.0, 1.5, 4.0], dtype=torch.double)
    log_r.requires_grad_(True)
    z = solve_log_h(log_r)
    assert torch.allclose(_h(z.detach()).log(), log_r.detach(), atol=1e-9)
    z.sum().backward()
    # dz / dlog r = 1 / (d log h / dz) = h(z) / Phi(z).
    expected = _h(z.detach()) / NORMAL.cdf(z.detach())
    assert torch.allclose(log_r.grad, expected, rtol=1e-6)
    assert float(z[-1].detach()) == pytest.approx(math.exp(4.0), rel=1e-3)  # h(z) ~ z for large z


def _data(xs, ys, costs):
    exps = [Experiment.create("t", i, {"x": x}) for i, x in enumerate(xs)]
    obs = [
        Observation(e.id, Status.COMPLETED, {"y": y}, cost=c)
        for e, y, c in zip(exps, ys, costs, strict=True)
    ]
    model = GPWorldModel(SPACE, ["y"])
    model.fit(exps, obs)
    return exps, obs, model


# Two equally good peaks, mirror images about x = 0.5; cost exp(2x) grows to the right.
XS = [0.05, 0.2, 0.35, 0.65, 0.8, 0.95]
YS = [0.2, 1.0, 0.4, 0.4, 1.0, 0.2]
COSTS = [math.exp(2 * x) for x in XS]


def test_index_solves_the_breakeven_equation():
    exps, obs, model = _data(XS, YS, COSTS)
    X_base = SPACE.encode([e.parameters for e in exps])
    lam = 0.05
    acqf = GittinsIndex(model.outcome_model("y"), model.log_cost_model(), X_base, lam)
    x = torch.tensor([[[0.1]], [[0.5]], [[0.83]]], dtype=torch.double)
    with torch.no_grad():
        g = acqf(x)
        post = model.posterior(x, "y")
        mu, sigma = post.mean.reshape(-1), post.variance.reshape(-1).sqrt()
        cost = model.log_cost_posterior(x).mean.reshape(-1).exp()
        base = model.posterior(X_base.unsqueeze(-2), "y").mean.reshape(-1)
        ref_cost = model.log_cost_posterior(X_base.unsqueeze(-2)).mean.reshape(-1).mean().exp()
    # Back in the objective's units: sigma * h((mu - G) / sigma) = lam * scale * c / c_ref.
    G = base.max() + g * base.std()
    lhs = sigma * _h((mu - G) / sigma)
    rhs = lam * base.std() * cost / ref_cost
    assert torch.allclose(lhs, rhs, rtol=1e-6)


def test_index_prefers_the_cheaper_of_two_equally_good_regions():
    exps, obs, model = _data(XS, YS, COSTS)
    X_base = SPACE.encode([e.parameters for e in exps])
    acqf = build_acquisition(model, "y", True, X_base, None, kind="gittins", gittins_lambda=0.05)
    x = torch.tensor([[[0.17]], [[0.83]]], dtype=torch.double)
    with torch.no_grad():
        g = acqf(x)
    assert float(g[0]) > float(g[1])
    # A larger cost weight lowers every index (looking costs more).
    dear = build_acquisition(model, "y", True, X_base, None, kind="gittins", gittins_lambda=0.5)
    with torch.no_grad():
        assert bool((dear(x) < g).all())
    agent = Agent(SPACE, "y", True, acquisition="gittins", num_restarts=2, raw_samples=32)
    [cand] = agent.propose(model, exps, obs, [], 1)
    assert cand.parameters["x"] < 0.5
    assert cand.acquisition_value is not None and math.isfinite(cand.acquisition_value)


def test_pending_points_lower_the_index_nearby():
    exps, obs, model = _data([0.0, 0.3, 0.5, 0.7, 1.0], [0.0, 0.5, 1.0, 0.5, 0.0], [1, 2, 3, 2, 1])
    X_base = SPACE.encode([e.parameters for e in exps])
    pending = torch.tensor([[0.4]], dtype=torch.double)
    free = GittinsIndex(model.outcome_model("y"), model.log_cost_model(), X_base, 0.05)
    busy = GittinsIndex(
        model.outcome_model("y"), model.log_cost_model(), X_base, 0.05, X_pending=pending
    )
    near = torch.tensor([[[0.41]]], dtype=torch.double)
    with torch.no_grad():
        assert float(busy(near)) < float(free(near))
        # Kriging-believer variance: sigma^2(x) - cov(x, p)^2 / var(p), the mean kept.
        mean, sigma = busy._mean_sigma(near)
        joint = model.posterior(torch.tensor([[[0.41], [0.4]]], dtype=torch.double), "y")
        cov = joint.distribution.covariance_matrix[0]
    assert float(mean[0]) == pytest.approx(float(joint.mean[0, 0, 0]), rel=1e-9)
    assert float(sigma[0]) ** 2 == pytest.approx(
        float(cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]), rel=1e-3, abs=1e-9
    )
    agent = Agent(SPACE, "y", True, acquisition="gittins", num_restarts=2, raw_samples=32)
    first, second = agent.propose(model, exps, obs, [], 2)
    assert abs(first.parameters["x"] - second.parameters["x"]) > 0.01


def test_minimisation_and_bad_lambda():
    xs = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ys = [math.sin(2 * math.pi * x) for x in xs]  # max near 0.25, min near 0.75
    exps, obs, model = _data(xs, ys, [2.0] * 6)
    agent = Agent(SPACE, "y", False, acquisition="gittins", num_restarts=2, raw_samples=32)
    [lo] = agent.propose(model, exps, obs, [], 1)
    assert 0.5 < lo.parameters["x"] < 1.0
    with pytest.raises(ValueError, match="cost weight"):
        GittinsIndex(model.outcome_model("y"), model.log_cost_model(), torch.zeros(1, 1), 0.0)


def test_breakeven_weight_puts_the_index_on_the_incumbent():
    exps, obs, model = _data(XS, YS, COSTS)
    X_base = SPACE.encode([e.parameters for e in exps])
    acqf = GittinsIndex(model.outcome_model("y"), model.log_cost_model(), X_base, 0.1)
    x = torch.tensor([[[0.1]], [[0.27]], [[0.5]], [[0.9]]], dtype=torch.double)
    with torch.no_grad():
        lam = acqf.breakeven(x)
        for i in range(len(x)):
            acqf.lam = float(lam[i])
            assert float(acqf(x[i : i + 1])) == pytest.approx(0.0, abs=1e-6)
            acqf.lam = float(lam[i]) * 2  # dearer looking: below the incumbent
            assert float(acqf(x[i : i + 1])) < 0


def test_adaptive_weight_keeps_some_candidate_above_the_incumbent():
    exps, obs, model = _data(XS, YS, COSTS)
    X_base = SPACE.encode([e.parameters for e in exps])
    acqf = GittinsIndex(model.outcome_model("y"), model.log_cost_model(), X_base, 0.1)
    lam = adaptive_lambda(acqf, lam_max=1e3, seed=1)
    grid = torch.quasirandom.SobolEngine(1, scramble=True, seed=1).draw(ADAPTIVE_SAMPLES)
    with torch.no_grad():
        best = acqf.breakeven(grid.double().unsqueeze(-2)).max()
        assert lam == pytest.approx(ADAPTIVE_FRACTION * float(best), rel=1e-9)
        acqf.lam = lam
        assert float(acqf(grid.double().unsqueeze(-2)).max()) > 0
    assert adaptive_lambda(acqf, lam_max=1e-9, seed=1) == 1e-9  # capped
    # The agent's default is the adaptive weight.
    agent = Agent(SPACE, "y", True, acquisition="gittins", num_restarts=2, raw_samples=32)
    assert agent.gittins_lambda is None
    [cand] = agent.propose(model, exps, obs, [], 1)
    assert cand.acquisition_value is not None and cand.acquisition_value > 0
