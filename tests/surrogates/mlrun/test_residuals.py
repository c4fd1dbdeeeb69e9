"""Residual GPs: each point's own Gaussian (``marginal``) is the joint one's (``combine``)."""

from __future__ import annotations

import pytest
import torch

from sciwm.space import Parameter, SearchSpace
from surrogates.mlrun.residuals import ResidualGPs


def space() -> SearchSpace:
    return SearchSpace(
        (
            Parameter("learner", "categorical", choices=("a", "b", "c", "d")),
            Parameter("size", "int", 16, 4096, log=True),
        )
    )


@pytest.fixture(scope="module")
def gps() -> ResidualGPs:
    s = space()
    g = torch.Generator().manual_seed(0)
    rows = [{"learner": lr, "size": int(n)} for lr in "abc" for n in (32, 200, 1500)]
    X = s.encode(rows)
    r0 = 0.1 * (X[:, 1] - 0.5) + 0.02 * torch.randn(len(X), generator=g).double()
    r1 = 0.5 * X[:, 0] + 0.05 * torch.randn(len(X), generator=g).double()
    out = ResidualGPs(s, min_points=3, seed=0)
    out.fit({0: (X, r0), 1: (X, r1), 2: (X[:2], r1[:2])})  # target 2: too few, no GP
    return out


@pytest.mark.parametrize("j", [0, 1, 2])
@pytest.mark.parametrize("noise", [False, True])
def test_marginal_is_the_joint_gaussian_of_one_point(gps: ResidualGPs, j: int, noise: bool) -> None:
    s = space()
    X = s.encode(s.sample(50, generator=torch.Generator().manual_seed(1)))
    X = torch.cat([X, s.encode([{"learner": "d", "size": 300}])])  # a learner no run tried
    g = torch.Generator().manual_seed(2)
    mean = 0.7 + 0.1 * torch.rand(len(X), generator=g).double()
    var = 0.01 * torch.rand(len(X), generator=g).double()
    mvn = gps.combine(X.unsqueeze(-2), j, mean.unsqueeze(-1), var.unsqueeze(-1), noise)
    m, v = gps.marginal(X, j, mean, var, noise)
    assert m.shape == v.shape == (len(X),)
    assert torch.allclose(m, mvn.mean.squeeze(-1), rtol=1e-10, atol=1e-12)
    assert torch.allclose(v, mvn.variance.squeeze(-1), rtol=1e-8, atol=1e-14)
    if j in gps.gps:  # the unseen learner keeps the prior's variance on top of the GP's
        assert float(v[-1]) > float(var[-1])
