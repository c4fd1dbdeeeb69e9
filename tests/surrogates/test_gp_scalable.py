"""The GP world model past ``scalable_above``: a subset GP that agrees with the exact one."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel
from surrogates.gp_scalable import hyperparameters, subset_indices, warm_state

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0), Parameter("y", "float", 0.0, 1.0)))


def _results(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    U = torch.rand(n, 2, generator=gen, dtype=torch.double)
    params = SPACE.decode(U)
    exps = [Experiment.create("s", i, p) for i, p in enumerate(params)]
    obs = [
        Observation(
            e.id,
            Status.COMPLETED,
            {"f": math.sin(3 * p["x"]) + math.cos(2 * p["y"])},
            cost=1.0 + p["x"],
        )
        for e, p in zip(exps, params, strict=True)
    ]
    return exps, obs


def test_subset_keeps_both_ends_and_a_random_rest():
    Y = torch.arange(30, dtype=torch.double).reshape(-1, 1).flip(0)  # 29 .. 0
    keep = subset_indices(Y, 9, seed=0)
    values = set(Y[keep].reshape(-1).tolist())
    assert len(keep) == 9 and len(values) == 9
    assert {0.0, 1.0, 2.0, 27.0, 28.0, 29.0} <= values  # the 3 lowest and the 3 highest
    assert torch.equal(keep, torch.sort(keep).values)
    assert torch.equal(subset_indices(Y, 9, seed=0), keep)  # reproducible
    assert torch.equal(subset_indices(Y[:5], 9, seed=0), torch.arange(5))


def test_subset_gp_agrees_with_the_exact_gp_and_says_so(caplog):
    exps, obs = _results(90)
    exact = GPWorldModel(SPACE, ["f"], scalable_above=0)
    exact.fit(exps, obs)
    with caplog.at_level(logging.INFO, logger="surrogates.gp"):
        subset = GPWorldModel(SPACE, ["f"], scalable_above=60, subset_size=60)
        subset.fit(exps, obs)
    assert "exceed scalable_above = 60" in caplog.text
    assert subset.summary.extra["subset"] == {"f": [60, 90], "(log cost)": [60, 90]}
    assert exact.summary.extra["subset"] == {}
    grid = [{"x": x / 6, "y": y / 6} for x in range(7) for y in range(7)]
    a, b = exact.predict(grid), subset.predict(grid)
    truth = [math.sin(3 * p["x"]) + math.cos(2 * p["y"]) for p in grid]
    err = max(abs(p.outcomes["f"].mean - q.outcomes["f"].mean) for p, q in zip(a, b, strict=True))
    spread = max(truth) - min(truth)
    assert err < 0.02 * spread
    for p, q in zip(a, b, strict=True):  # both intervals tight where data are dense
        assert q.outcomes["f"].std < 0.05 * spread
        assert q.cost.mean == pytest.approx(p.cost.mean, rel=0.02)


def test_refit_starts_from_the_previous_hyperparameters(caplog):
    exps, obs = _results(80)
    model = GPWorldModel(SPACE, ["f"], scalable_above=50, subset_size=40)
    model.fit(exps[:70], obs[:70])
    first = hyperparameters(model._models["f"])
    assert {"raw_lengthscale", "raw_noise"} <= set(first)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="surrogates.gp"):
        model.fit(exps, obs)
    assert "exceed scalable_above" not in caplog.text  # said once, on the first such fit
    fresh = GPWorldModel(SPACE, ["f"], scalable_above=0)
    fresh.fit(exps[:10], obs[:10])
    gp = fresh._models["f"]
    assert warm_state(gp, first)
    assert torch.equal(gp.covar_module.raw_lengthscale.detach(), first["raw_lengthscale"])
    assert not warm_state(gp, {"raw_lengthscale": torch.zeros(1, 5)})  # shapes must match


def test_bad_settings_are_rejected():
    from sciwm.errors import WorldModelError

    with pytest.raises(WorldModelError, match="subset_size"):
        GPWorldModel(SPACE, ["f"], subset_size=2)
    with pytest.raises(WorldModelError, match="scalable_above"):
        GPWorldModel(SPACE, ["f"], scalable_above=-1)


def test_subset_fit_is_conditioned_on_more_results_and_survives_save_and_load(tmp_path):
    exps, obs = _results(120, seed=3)
    model = GPWorldModel(SPACE, ["f"], scalable_above=50, subset_size=40, condition_size=100)
    model.fit(exps, obs)
    gp = model._models["f"]
    assert gp.train_inputs[0].shape[0] == 100  # fitted on 40, conditioned on 100
    alone = GPWorldModel(SPACE, ["f"], scalable_above=50, subset_size=40, condition_size=0)
    alone.fit(exps, obs)
    assert alone._models["f"].train_inputs[0].shape[0] == 40
    h, h_alone = hyperparameters(gp), hyperparameters(alone._models["f"])
    assert torch.equal(h["raw_lengthscale"], h_alone["raw_lengthscale"])  # kept, not refitted
    # the conditioned GP standardises its targets with the subset's constants
    Y = torch.tensor([[o.outcomes["f"]] for o in obs], dtype=torch.double)
    Z_back, _ = gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))
    assert {round(v, 9) for v in Z_back.reshape(-1).tolist()} <= {
        round(v, 9) for v in Y.reshape(-1).tolist()
    }
    grid = [{"x": x / 5, "y": y / 5} for x in range(6) for y in range(6)]
    truth = [math.sin(3 * p["x"]) + math.cos(2 * p["y"]) for p in grid]
    err = [abs(p.outcomes["f"].mean - t) for p, t in zip(model.predict(grid), truth, strict=True)]
    err_alone = [
        abs(p.outcomes["f"].mean - t) for p, t in zip(alone.predict(grid), truth, strict=True)
    ]
    assert sum(err) < sum(err_alone)  # more data, same hyperparameters: closer to the truth
    loaded = GPWorldModel.load(model.save(tmp_path / "wm"))
    for p, q in zip(model.predict(grid), loaded.predict(grid), strict=True):
        assert q.outcomes["f"].mean == pytest.approx(p.outcomes["f"].mean, abs=1e-9)
        assert q.outcomes["f"].std == pytest.approx(p.outcomes["f"].std, abs=1e-9)
