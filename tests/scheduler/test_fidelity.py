"""Fidelity choice: target-fidelity information per unit cost, checked in closed form."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch
from botorch.posteriors import GPyTorchPosterior, TorchPosterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from scheduler.agent import Agent
from scheduler.fidelity import (
    choose_fidelities,
    choose_fidelity,
    information_fraction,
    project_to_target,
)
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate, Prediction
from sciwm.space import Parameter, SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel
from surrogates.gp import GPWorldModel

#: Length in [10, 1010] (linear), so the unit value s maps to L = 10 + 1000 s.
SPACE = SearchSpace(
    (
        Parameter("temperature", "float", 300.0, 600.0),
        Parameter("length", "float", 10.0, 1010.0, fidelity=True),
    )
)


def _length(X: Tensor) -> Tensor:
    return 10.0 + 1000.0 * X[..., 1]


class SamplingNoiseModel(WorldModel):
    """Test double with a known posterior: the latent outcome has variance ``v`` everywhere
    and does not depend on the length; a run of length ``L`` measures it with noise variance
    ``a / L`` and costs ``c0 + c1 L`` (fixed start-up cost plus time per unit length)."""

    name = "sampling-noise-double"

    def __init__(self, v: float, a: float, c0: float, c1: float) -> None:
        super().__init__(SPACE, ["y"])
        self.v, self.a, self.c0, self.c1 = v, a, c0, c1

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        raise NotImplementedError

    def predict(self, parameters: Sequence[Mapping[str, Any]], level: float = 0.9) -> list:
        cost = Estimate.lognormal(math.log(self.c0 + self.c1 * 100.0), 0.1, level)
        return [Prediction({"y": Estimate.gaussian(0.0, math.sqrt(self.v), level)}, cost)] * len(
            parameters
        )

    def posterior(self, X: Tensor, outcome: str) -> GPyTorchPosterior:
        """Joint: the latent depends on temperature only, with the same variance everywhere."""
        q = X.shape[-2]
        cov = self.v * torch.ones(q, q, dtype=X.dtype) + 1e-9 * torch.eye(q, dtype=X.dtype)
        mean = 0.1 * X[..., 0]
        return GPyTorchPosterior(MultivariateNormal(mean, cov.expand(*X.shape[:-2], q, q)))

    def observation_std(self, X: Tensor, outcome: str) -> Tensor:
        return (self.a / _length(X)).sqrt().reshape(-1)

    def log_cost_posterior(self, X: Tensor) -> TorchPosterior:
        mean = torch.log(self.c0 + self.c1 * _length(X)).unsqueeze(-1)
        return TorchPosterior(torch.distributions.Normal(mean, torch.full_like(mean, 0.1)))

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        pass


def test_project_to_target_sets_only_fidelity_columns() -> None:
    X = torch.tensor([[0.2, 0.3], [0.7, 0.0]], dtype=torch.double)
    out = project_to_target(X, [1])
    assert torch.equal(out[:, 0], X[:, 0]) and torch.equal(out[:, 1], torch.ones(2))
    assert torch.equal(project_to_target(X, []), X)


def test_information_fraction_matches_closed_form() -> None:
    model = SamplingNoiseModel(v=0.04, a=2.0, c0=5.0, c1=0.01)
    X_query = torch.tensor([[0.5, 0.0], [0.5, 0.49], [0.5, 1.0]], dtype=torch.double)
    rho = information_fraction(model, "y", project_to_target(X_query, [1]), X_query)
    expected = 0.04 / (0.04 + 2.0 / _length(X_query))
    torch.testing.assert_close(rho, expected)


@pytest.mark.parametrize(
    ("c0", "c1", "slot"), [(5.0, 0.01, 0.0), (0.5, 0.01, 0.0), (20.0, 0.001, 0.0), (0.5, 0.01, 8.0)]
)
def test_choice_maximises_information_per_cost(c0: float, c1: float, slot: float) -> None:
    """rho / (cost + slot) = v / ((v + a/L)(c0 + slot + c1 L)) peaks at
    L* = sqrt(a (c0 + slot) / (v c1)): a priced slot moves the choice to longer runs."""
    v, a = 0.04, 2.0
    model = SamplingNoiseModel(v, a, c0, c1)
    x = torch.tensor([0.5, 0.5], dtype=torch.double)
    choice = choose_fidelity(model, "y", x, [1], slot_cost=slot)
    grid_lengths = 10.0 + 1000.0 * torch.linspace(0, 1, 17, dtype=torch.double)
    score = v / ((v + a / grid_lengths) * (c0 + slot + c1 * grid_lengths))
    best = float(grid_lengths[int(torch.argmax(score))])
    assert float(_length(choice.x)) == pytest.approx(best)
    assert choice.x[0] == 0.5  # the other coordinates are kept
    assert choice.cost == pytest.approx(c0 + c1 * best, rel=1e-9)
    assert choice.information == pytest.approx(v / (v + a / best))
    if (c0 + slot) / c1 > 5000:  # a large fixed or slot cost: long runs, never the cheapest
        assert best > 10.0
    if slot:
        free = choose_fidelity(model, "y", x, [1])
        assert float(_length(choice.x)) > float(_length(free.x))


def _gp_on(f, seed: int = 0) -> GPWorldModel:
    """A GP on 10 noisy points with temperature in the lower half of its range, cost 1-100."""
    gen = torch.Generator().manual_seed(seed)
    U = torch.rand(10, 2, generator=gen, dtype=torch.double)
    U[:, 0] *= 0.5
    exps, obs = [], []
    for i, row in enumerate(SPACE.decode(U)):
        u = SPACE.encode([row])[0]
        e = Experiment.create("f", i, row)
        exps.append(e)
        y = float(f(u)) + 0.01 * float(torch.randn(1, generator=gen))
        obs.append(Observation(e.id, Status.COMPLETED, {"y": y}, cost=1.0 + 99.0 * float(u[1])))
    model = GPWorldModel(SPACE, ["y"])
    model.fit(exps, obs)
    return model


#: A point the GP is unsure about (no data above temperature 0.5 in the cube).
X_NEW = torch.tensor([0.9, 0.0], dtype=torch.double)


def test_gp_cheap_fidelity_when_fidelity_does_not_matter() -> None:
    model = _gp_on(lambda u: torch.sin(6 * u[0]))
    choice = choose_fidelity(model, "y", X_NEW, [1])
    assert float(choice.x[1]) <= 0.25
    assert choice.information > 0.9


def test_gp_target_fidelity_where_low_fidelity_is_biased() -> None:
    """A low fidelity that measures another function tells little about the target."""
    model = _gp_on(lambda u: torch.sin(6 * u[0]) + 3 * (1 - u[1]) ** 2 * torch.cos(9 * u[0]))
    X_query = torch.stack([X_NEW, torch.tensor([0.9, 1.0], dtype=torch.double)])
    rho = information_fraction(model, "y", project_to_target(X_query, [1]), X_query)
    assert rho[0] < 0.1 < 0.9 < rho[1]
    assert float(choose_fidelity(model, "y", X_NEW, [1]).x[1]) == 1.0
    noise = model.observation_std(X_query, "y")
    assert noise.shape == (2,) and torch.all(noise >= 0) and torch.all(noise < 0.1)


def test_batched_choice_matches_one_point_at_a_time() -> None:
    """One batched pass over many points picks, for each, what a call of its own picks."""
    model = _gp_on(lambda u: torch.sin(6 * u[0]) + 2 * (1 - u[1]) ** 2 * torch.cos(5 * u[0]))
    X = torch.rand(12, 2, generator=torch.Generator().manual_seed(3), dtype=torch.double)
    batched = choose_fidelities(model, "y", X, [1], slot_cost=2.0)
    assert len(batched) == len(X)
    picked = set()
    for x, b in zip(X, batched, strict=True):
        one = choose_fidelity(model, "y", x, [1], slot_cost=2.0)
        torch.testing.assert_close(b.x, one.x)
        assert b.information == pytest.approx(one.information, rel=1e-6, abs=1e-9)
        assert b.cost == pytest.approx(one.cost, rel=1e-9)
        picked.add(float(b.x[1]))
    assert len(picked) > 1  # the points' choices differ, so the check can tell them apart
    assert torch.equal(choose_fidelities(model, "y", X, [])[0].x, X[0])  # no fidelity: as is


@pytest.mark.parametrize(("acquisition", "expected"), [("ei_per_cost", None), ("ei", 1010.0)])
def test_agent_runs_cost_aware_proposals_at_a_chosen_fidelity(
    acquisition: str, expected: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Cost-aware: the length maximising information per cost (closed form, as above);
    cost-blind: the target length."""
    v, a, c0, c1 = 0.04, 2.0, 5.0, 0.01
    model = SamplingNoiseModel(v, a, c0, c1)
    model.summary = TrainingSummary(3, 3, ["y"], [])
    exps = [
        Experiment.create("f", i, {"temperature": t, "length": 100.0})
        for i, t in enumerate((320.0, 450.0, 580.0))
    ]
    obs = [Observation(e.id, Status.COMPLETED, {"y": 0.0}, 6.0) for e in exps]
    agent = Agent(
        SPACE,
        "y",
        True,
        acquisition=acquisition,
        initial_experiments=3,
        num_restarts=2,
        raw_samples=32,
    )
    (candidate,) = agent.propose(model, exps, obs, [], 1)
    if expected is None:
        grid_lengths = 10.0 + 1000.0 * torch.linspace(0, 1, 17, dtype=torch.double)
        score = v / ((v + a / grid_lengths) * (c0 + c1 * grid_lengths))
        expected = float(grid_lengths[int(torch.argmax(score))])
        assert expected < 1010.0
    assert candidate.parameters["length"] == pytest.approx(expected)
    assert not caplog.records  # no fallback to a random point
