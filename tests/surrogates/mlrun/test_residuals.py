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


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[dict | None]:
    """The warm start (``None``: botorch's defaults) of every residual GP fit that follows."""
    import surrogates.mlrun.residuals as residuals
    from surrogates.gp_fit import fit_or_restore

    seen: list[dict | None] = []

    def spy(model, state, seed, what="a GP", warm=None):  # noqa: ANN001, ANN202
        seen.append(None if warm is None else dict(warm))
        return fit_or_restore(model, state, seed, what, warm=warm)

    monkeypatch.setattr(residuals, "fit_or_restore", spy)
    return seen


def test_refits_start_from_the_last_fit_until_the_runs_double(
    starts: list[dict | None],
) -> None:
    """A few more runs: the fit starts from the last one's hyperparameters (only those, not
    the old data's standardisation); twice the runs of the last default-start fit: from
    botorch's defaults again."""
    from surrogates.gp_fit import hyperparameters

    s = space()
    g = torch.Generator().manual_seed(1)
    X = s.encode(s.sample(24, generator=g))
    r = 0.1 * (X[:, 1] - 0.5) + 0.3 * X[:, 0] + 0.02 * torch.randn(len(X), generator=g).double()
    gps = ResidualGPs(s, min_points=3, seed=0)
    for n in (6, 8, 11, 12, 5, 7):
        before = hyperparameters(gps.gps[0]) if gps.gps else None
        gps.fit({0: (X[:n], r[:n])})
        if n in (8, 11, 7):  # grown, but less than twice the runs of the last cold fit
            assert starts[-1] is not None and before is not None
            assert starts[-1].keys() == before.keys()
            assert all(torch.equal(starts[-1][k], before[k]) for k in before)
            assert all("raw_" in k and "outcome_transform" not in k for k in before)
        else:  # the first fit, twice the runs (6 -> 12), fewer runs than before (12 -> 5)
            assert starts[-1] is None
        torch.testing.assert_close(  # its standardisation is the new data's
            gps.gps[0].outcome_transform.means.reshape(-1), r[:n].mean().reshape(-1)
        )


def test_refits_with_many_runs_keep_the_hyperparameters_until_the_runs_grow_10_percent(
    starts: list[dict | None],
) -> None:
    """From ``REUSE_FROM`` runs, a refit after a few more runs conditions the GP on them with
    the last optimisation's hyperparameters (no fit); 10% more runs than that optimisation:
    a warm-started fit again."""
    from surrogates.gp_fit import hyperparameters
    from surrogates.mlrun.residuals import REOPTIMISE_GROWTH, REUSE_FROM

    s = space()
    g = torch.Generator().manual_seed(3)
    X = s.encode(s.sample(60, generator=g))
    r = 0.1 * (X[:, 1] - 0.5) + 0.3 * X[:, 0] + 0.02 * torch.randn(len(X), generator=g).double()
    gps = ResidualGPs(s, min_points=3, seed=0)
    gps.fit({0: (X[:30], r[:30])})  # the first fit, from botorch's defaults
    last_opt, optimised = 30, []
    for n in range(31, 60):
        fits, before = len(starts), hyperparameters(gps.gps[0])
        gps.fit({0: (X[:n], r[:n])})
        after = hyperparameters(gps.gps[0])
        assert len(gps.gps[0].train_targets) == n  # conditioned on every run either way
        kept = all(torch.equal(before[k], after[k]) for k in before)
        expected = n < REUSE_FROM or n >= REOPTIMISE_GROWTH * last_opt
        assert (len(starts) > fits) == expected and kept == (not expected)
        if expected:
            assert starts[-1] is not None  # warm-started from the last fit
            last_opt = n
            optimised.append(n)
    # every run below 40; then each time the runs pass 1.1 x those of the last optimisation
    assert optimised == [*range(31, 40), 43, 48, 53, 59]


def test_warm_started_refits_fit_about_as_well_as_default_starts() -> None:
    """Over 8 campaigns of 19 learners, a refit after 10% more runs reaches, on average, the
    marginal likelihood of a fit from botorch's defaults (within 0.02 nats per run)."""
    from gpytorch.mlls import ExactMarginalLogLikelihood

    learners = tuple(f"l{i}" for i in range(19))
    s = SearchSpace(
        (
            Parameter("learner", "categorical", choices=learners),
            Parameter("size", "int", 16, 16000, log=True),
        )
    )

    def mll(gps: ResidualGPs) -> float:
        gp = gps.gps[0]
        gp.train()
        with torch.no_grad():
            value = ExactMarginalLogLikelihood(gp.likelihood, gp)(
                gp(*gp.train_inputs), gp.train_targets
            )
        gp.eval()
        return float(value)

    diffs = []
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        X = s.encode(s.sample(33, generator=g))
        effect = 0.05 * torch.randn(19, generator=g).double()
        r = effect[(X[:, 0] * 18).round().long()] + 0.05 * (X[:, 1] - 0.5)
        r = r + 0.01 * torch.randn(len(X), generator=g).double()
        warm = ResidualGPs(s, min_points=3, seed=0)
        warm.fit({0: (X[:30], r[:30])})
        warm.fit({0: (X, r)})
        cold = ResidualGPs(s, min_points=3, seed=0)
        cold.fit({0: (X, r)})
        diffs.append(mll(warm) - mll(cold))
    assert sum(diffs) / len(diffs) > -0.02


def test_a_copy_starts_from_its_parents_hyperparameters(starts: list[dict | None]) -> None:
    """A restarted search's copy fits its few runs from the parent's hyperparameters, and
    from botorch's defaults only once its runs reach twice the parent's last cold fit."""
    from surrogates.gp_fit import hyperparameters

    s = space()
    g = torch.Generator().manual_seed(4)
    X = s.encode(s.sample(30, generator=g))
    r = 0.2 * X[:, 0] + 0.02 * torch.randn(len(X), generator=g).double()
    parent = ResidualGPs(s, min_points=3, seed=0)
    parent.fit({0: (X[:12], r[:12])})
    child = ResidualGPs(s, min_points=3, seed=0)
    child.inherit(parent)
    child.fit({0: (X[:2], r[:2])})  # too few runs for a GP: the inheritance waits
    assert child.gps == {}
    child.fit({0: (X[12:17], r[12:17])})
    given = hyperparameters(parent.gps[0])
    assert starts[-1] is not None and all(torch.equal(starts[-1][k], given[k]) for k in given)
    child.fit({0: (X[12:20], r[12:20])})
    assert starts[-1] is not None  # still warm: 8 runs, fewer than twice the parent's 12
    child.fit({0: (X[:24], r[:24])})
    assert starts[-1] is None  # 24 = twice the parent's last cold fit: from the defaults


def test_a_loaded_model_refits_on_the_schedule_it_was_saved_with(
    starts: list[dict | None],
) -> None:
    """Saved and loaded (a resumed campaign), the GPs' next refit after a few more runs is
    warm-started from the loaded hyperparameters, as it would have been without the save."""
    from surrogates.gp_fit import hyperparameters

    s = space()
    g = torch.Generator().manual_seed(5)
    X = s.encode(s.sample(16, generator=g))
    r = 0.2 * X[:, 0] + 0.02 * torch.randn(len(X), generator=g).double()
    saved = ResidualGPs(s, min_points=3, seed=0)
    saved.fit({0: (X[:12], r[:12])})  # from botorch's defaults
    loaded = ResidualGPs(s, min_points=3, seed=0)
    loaded.load_state(saved.state(), saved.targets)
    given = hyperparameters(loaded.gps[0])
    loaded.fit({0: (X[:14], r[:14])})
    assert starts[-1] is not None and all(torch.equal(starts[-1][k], given[k]) for k in given)
    old = ResidualGPs(s, min_points=3, seed=0)  # a state saved without its schedule
    unscheduled = {k: v for k, v in saved.state().items() if not k.endswith(("cold_n", "opt_n"))}
    old.load_state(unscheduled, saved.targets)
    old.fit({0: (X[:14], r[:14])})
    assert starts[-1] is None
