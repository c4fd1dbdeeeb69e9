"""The GP world model: conformance, calibration on known functions, cost, extrapolation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from statistics import NormalDist

import pytest
import torch

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate
from sciwm.space import Parameter, SearchSpace
from sciwm.testing.world_model_suite import (
    ModelFactory,
    WorldModelConformance,
    default_calibration_case,
    measure_calibration,
)
from surrogates.gp import COST, GPSettings, GPWorldModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Small exact GPs fit several times faster on one thread (no OpenMP contention)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TestGPConformance(WorldModelConformance):
    @pytest.fixture(scope="class")
    def model_factory(self) -> ModelFactory:
        return lambda space, outcomes: GPWorldModel(space, outcomes, seed=0)


_SUITE_SPACE = SearchSpace(
    (
        Parameter("x", "float", 0.0, 1.0),
        Parameter("lr", "float", 1e-3, 1.0, log=True),
        Parameter("n", "int", 1, 9),
    )
)


class _ScaledGP(GPWorldModel):
    """A deliberately miscalibrated GP: every outcome interval ``factor`` times as wide."""

    factor = 0.5

    def predict(self, parameters, level=0.9):  # type: ignore[no-untyped-def]
        out = []
        for p in super().predict(parameters, level):
            f = self.factor
            outcomes = {
                k: Estimate(
                    e.mean,
                    e.std * f,
                    e.mean - f * (e.mean - e.lower),
                    e.mean + f * (e.upper - e.mean),
                    e.level,
                )
                for k, e in p.outcomes.items()
            }
            out.append(dataclasses.replace(p, outcomes=outcomes))
        return out


def test_calibration_check_fails_a_miscalibrated_model() -> None:
    """The conformance suite's calibration check can fail: the same GP with its outcome
    intervals halved fails it on the suite's default known distribution (which the GP itself
    passes in TestGPConformance), while its cost intervals, left alone, stay in the band."""
    case = default_calibration_case(_SUITE_SPACE, ["y", "z"])
    report = measure_calibration(
        lambda sp, o: _ScaledGP(sp, o, seed=0), _SUITE_SPACE, ["y", "z"], case
    )
    failures = report.failures()
    assert any(f.startswith("y: 90% intervals cover") for f in failures), failures
    assert any(f.startswith("z: 90% intervals cover") for f in failures), failures
    assert report.coverage["y"] < 0.75 and report.coverage["z"] < 0.75, report.coverage
    assert 0.85 <= report.coverage["cost"] <= 0.95  # the cost intervals were left alone


def _experiments(rows: list[dict], campaign: str = "gp-test") -> list[Experiment]:
    return [Experiment.create(campaign, i, r) for i, r in enumerate(rows)]


# -- calibration on a known function --------------------------------------------------------
SIGMA = 0.2
SEEDS = (0, 1, 2)


def _sine(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * x)


def _fit_sine(seed: int) -> GPWorldModel:
    """A GP fitted on 40 seeded noisy draws of sin(2 pi x), noise std ``SIGMA``."""
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(40, generator=g, dtype=torch.double)
    y = _sine(x) + SIGMA * torch.randn(40, generator=g, dtype=torch.double)
    experiments = _experiments([{"x": float(v)} for v in x])
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": float(v)}, cost=1.0 + float(xi))
        for e, v, xi in zip(experiments, y, x, strict=True)
    ]
    model = GPWorldModel(space, ["y"], seed=0)
    model.fit(experiments, observations)
    return model


@pytest.fixture(scope="module")
def sine_models() -> list[GPWorldModel]:
    """One GP per training seed: coverage is averaged so that no single draw decides."""
    return [_fit_sine(seed) for seed in SEEDS]


def _fresh_points(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """500 fresh noisy test points, from a different seed than any training data."""
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.rand(500, generator=g, dtype=torch.double)
    return x, _sine(x) + SIGMA * torch.randn(500, generator=g, dtype=torch.double)


@pytest.mark.parametrize(("level", "lo", "hi"), [(0.9, 0.8, 0.97), (0.5, 0.38, 0.62)])
def test_interval_coverage_on_known_function(
    sine_models: list[GPWorldModel], level: float, lo: float, hi: float
) -> None:
    coverages = []
    for seed, model in zip(SEEDS, sine_models, strict=True):
        x, y = _fresh_points(seed)
        predictions = model.predict([{"x": float(v)} for v in x], level=level)
        hits = [p.outcomes["y"].contains(float(t)) for p, t in zip(predictions, y, strict=True)]
        coverages.append(sum(hits) / len(hits))
    coverage = sum(coverages) / len(coverages)
    assert lo <= coverage <= hi, f"coverage {coverage:.3f} of the {level} interval ({coverages})"


def test_predictive_std_includes_known_noise(sine_models: list[GPWorldModel]) -> None:
    # Inside the data the predictive std is the noise plus a little model uncertainty, and the
    # mean is close to the truth.
    xs = [0.15, 0.4, 0.65, 0.9]
    for x, p in zip(xs, sine_models[1].predict([{"x": x} for x in xs]), strict=True):
        est = p.outcomes["y"]
        assert 0.7 * SIGMA <= est.std <= 1.6 * SIGMA
        assert est.mean == pytest.approx(math.sin(2 * math.pi * x), abs=0.25)
        z = NormalDist().inv_cdf(0.95)
        assert est.upper - est.lower == pytest.approx(2 * z * est.std, rel=1e-9)
        assert not p.extrapolating


# -- cost --------------------------------------------------------------------------------------
COST_SIGMA = 0.1


def _true_log_cost(size: float, x: float) -> float:
    """log of 2 * size^0.8 * exp(0.5 x): linear in the unit-cube encoding (size is log-scaled)."""
    return math.log(2.0) + 0.8 * math.log(size) + 0.5 * x


@pytest.fixture(scope="module")
def cost_model() -> GPWorldModel:
    space = SearchSpace(
        (Parameter("size", "float", 1.0, 1000.0, log=True), Parameter("x", "float", 0.0, 1.0))
    )
    g = torch.Generator().manual_seed(5)
    rows = space.sample(40, generator=g)
    experiments = _experiments(rows)
    noise = COST_SIGMA * torch.randn(len(rows), generator=g, dtype=torch.double)
    observations = [
        Observation(
            e.id,
            Status.COMPLETED,
            {"y": r["x"]},
            cost=math.exp(_true_log_cost(r["size"], r["x"]) + float(eps)),
        )
        for e, r, eps in zip(experiments, rows, noise, strict=True)
    ]
    model = GPWorldModel(space, ["y"], seed=0)
    model.fit(experiments, observations)
    return model


@pytest.mark.parametrize(("size", "x"), [(3.0, 0.2), (30.0, 0.5), (300.0, 0.8), (100.0, 0.1)])
def test_cost_prediction_log_linear_closed_form(
    cost_model: GPWorldModel, size: float, x: float
) -> None:
    level = 0.9
    z = NormalDist().inv_cdf(0.5 + level / 2)
    c = cost_model.predict([{"size": size, "x": x}], level=level)[0].cost
    # A log-normal interval is exp(mu -+ z s): recover mu and s from it.
    mu = (math.log(c.lower) + math.log(c.upper)) / 2
    s = (math.log(c.upper) - math.log(c.lower)) / (2 * z)
    assert mu == pytest.approx(_true_log_cost(size, x), abs=0.1)
    assert COST_SIGMA * 0.6 <= s <= COST_SIGMA * 1.6
    # Mean and std are the log-normal's, in closed form.
    assert c.mean == pytest.approx(math.exp(mu + s**2 / 2), rel=1e-9)
    assert c.std == pytest.approx(math.sqrt(math.exp(s**2) - 1) * c.mean, rel=1e-9)
    true_mean = math.exp(_true_log_cost(size, x) + COST_SIGMA**2 / 2)
    assert c.mean == pytest.approx(true_mean, rel=0.1)


# -- extrapolation -----------------------------------------------------------------------------
def test_extrapolation_flag_far_from_data_only() -> None:
    space = SearchSpace((Parameter("x", "float", 0.0, 100.0),))
    xs = torch.linspace(0.0, 10.0, 15, dtype=torch.double).tolist()
    experiments = _experiments([{"x": x} for x in xs])
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": math.sin(2 * math.pi * x / 20)}, cost=1.0 + x)
        for e, x in zip(experiments, xs, strict=True)
    ]
    model = GPWorldModel(space, ["y"], seed=0)
    model.fit(experiments, observations)
    near, far = model.predict([{"x": 5.3}, {"x": 95.0}])
    assert not near.extrapolating and near.notes == []
    assert far.extrapolating and far.notes
    assert far.outcomes["y"].std > near.outcomes["y"].std
    assert near.extrapolating_reason is None
    assert far.extrapolating_reason == "x=95 is outside the observed 0-10"


def test_extrapolation_reason_far_from_every_observation_inside_the_range() -> None:
    # Observations at both ends only: the middle is inside the observed range but many
    # lengthscales from any observation.
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    xs = [0.0, 0.01, 0.02, 0.03, 0.97, 0.98, 0.99, 1.0]
    experiments = _experiments([{"x": x} for x in xs])
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": math.sin(40 * x)}, cost=1.0 + x)
        for e, x in zip(experiments, xs, strict=True)
    ]
    model = GPWorldModel(space, ["y"], seed=0)
    model.fit(experiments, observations)
    (mid,) = model.predict([{"x": 0.5}])
    assert mid.extrapolating
    assert mid.extrapolating_reason is not None
    assert mid.extrapolating_reason.endswith("lengthscales from the nearest observation")


# -- settings, data checks, determinism ----------------------------------------------------------
@pytest.fixture
def line_space() -> SearchSpace:
    return SearchSpace((Parameter("x", "float", 0.0, 1.0),))


def test_unknown_setting_is_named(line_space: SearchSpace) -> None:
    with pytest.raises(WorldModelError, match="min_pionts"):
        GPWorldModel(line_space, ["y"], min_pionts=3)


def test_min_points_at_least_two(line_space: SearchSpace) -> None:
    with pytest.raises(WorldModelError, match=r"world_model\.settings\.min_points: must be at"):
        GPWorldModel(line_space, ["y"], min_points=1)


def test_settings_are_typed_and_frozen(line_space: SearchSpace) -> None:
    cfg = GPWorldModel.check_settings({"min_points": 3.0, "seed": 4}, line_space)
    assert isinstance(cfg, GPSettings)
    assert (cfg.min_points, cfg.seed) == (3, 4) and isinstance(cfg.min_points, int)
    assert GPWorldModel(line_space, ["y"]).cfg == GPSettings(min_points=2, seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 5  # type: ignore[misc]
    with pytest.raises(WorldModelError, match=r"world_model\.settings\.seed: must be a whole"):
        GPWorldModel.check_settings({"seed": "one"}, line_space)


def test_too_few_points_raises(line_space: SearchSpace) -> None:
    experiments = _experiments([{"x": 0.1}, {"x": 0.5}, {"x": 0.9}])
    observations = [
        Observation(experiments[0].id, Status.COMPLETED, {"y": 1.0}, cost=1.0),
        Observation.failed(experiments[1].id, "boom", cost=1.0),
        Observation.failed(experiments[2].id, "boom", cost=1.0),
    ]
    model = GPWorldModel(line_space, ["y"], min_points=2)
    with pytest.raises(WorldModelError, match="at least 2 completed"):
        model.fit(experiments, observations)
    assert not model.is_fitted


def test_can_fit_says_what_fit_needs(line_space: SearchSpace) -> None:
    """The loop asks ``can_fit`` before fitting: it counts what ``fit`` needs, min_points too."""
    experiments = _experiments([{"x": 0.1}, {"x": 0.5}, {"x": 0.9}])
    done = [Observation(e.id, Status.COMPLETED, {"y": 1.0}, cost=1.0) for e in experiments]
    no_cost = [Observation(e.id, Status.COMPLETED, {"y": 1.0}) for e in experiments]
    one_y = [done[0]] + [
        Observation(e.id, Status.COMPLETED, {"z": 1.0}, cost=1.0) for e in experiments[1:]
    ]
    model = GPWorldModel(line_space, ["y"], min_points=3)
    assert not model.can_fit([], [])
    assert not model.can_fit(experiments[:2], done[:2])  # 2 < min_points
    assert model.can_fit(experiments, done)
    assert not model.can_fit(experiments, no_cost)
    assert not model.can_fit(experiments, one_y)
    with pytest.raises(WorldModelError, match="outcome 'y' was measured in only 1"):
        model.fit(experiments, one_y)
    assert GPWorldModel(line_space, ["y"]).can_fit(experiments[:2], done[:2])


def test_summary_lists_every_experiment_used(line_space: SearchSpace) -> None:
    xs = [0.05 * i for i in range(12)]
    experiments = _experiments([{"x": x} for x in xs])
    observations = []
    for i, (e, x) in enumerate(zip(experiments, xs, strict=True)):
        if i == 0:  # completed, cost unknown: trains the outcome model only
            observations.append(Observation(e.id, Status.COMPLETED, {"y": x}, cost=None))
        elif i == 1:  # failed with a cost: trains the cost model only
            observations.append(Observation.failed(e.id, "boom", cost=2.0))
        elif i == 2:  # neither: not trained on
            observations.append(Observation(e.id, Status.CANCELLED))
        else:
            observations.append(Observation(e.id, Status.COMPLETED, {"y": x}, cost=1.0 + x))
    model = GPWorldModel(line_space, ["y"])
    model.fit(experiments, observations)
    assert model.summary is not None
    assert model.summary.experiment_ids == [e.id for i, e in enumerate(experiments) if i != 2]
    assert model.summary.n_observations == 10
    assert model.summary.n_cost_observations == 10


def test_fit_is_deterministic(line_space: SearchSpace) -> None:
    g = torch.Generator().manual_seed(7)
    xs = torch.rand(15, generator=g, dtype=torch.double).tolist()
    experiments = _experiments([{"x": x} for x in xs])
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": math.cos(3 * x)}, cost=1.0 + x)
        for e, x in zip(experiments, xs, strict=True)
    ]
    queries = [{"x": 0.33}, {"x": 0.77}]
    runs = []
    for _ in range(2):
        model = GPWorldModel(line_space, ["y"], seed=3)
        model.fit(experiments, observations)
        runs.append([p.to_dict() for p in model.predict(queries)])
    assert runs[0] == runs[1]


def test_predict_is_the_posterior_of_each_candidate(cost_model: GPWorldModel) -> None:
    # predict() reads each candidate's own moments (surrogates.marginal), not the joint
    # posterior of the batch: the same numbers as botorch's posterior, to rounding
    rows = cost_model.space.sample(300, generator=torch.Generator().manual_seed(9))
    rows.append({"size": 1000.0, "x": 1.0})  # a corner: far from most observations
    preds = cost_model.predict(rows, level=0.8)
    X = cost_model.space.encode(rows)
    with torch.no_grad():
        post = cost_model._models["y"].posterior(X, observation_noise=True)
        cost = cost_model._cost_model.posterior(X, observation_noise=True)
        latent = cost_model._models["y"].posterior(X).variance.squeeze(-1).sqrt()
    # times the cross-validated factors on the stds (surrogates.gp_calibration)
    scale = cost_model._std_scale("y", cost_model._models["y"])
    cscale = cost_model._std_scale(COST, cost_model._cost_model)
    means, stds = post.mean.squeeze(-1), post.variance.sqrt().squeeze(-1) * scale
    cm, cs = cost.mean.squeeze(-1), cost.variance.sqrt().squeeze(-1) * cscale
    kern = cost_model._models["y"].covar_module
    prior = kern.outputscale.sqrt() if hasattr(kern, "outputscale") else 1.0
    std_y = cost_model._models["y"].outcome_transform.stdvs.squeeze()
    for i, p in enumerate(preds):
        y = p.outcomes["y"]
        assert (y.mean, y.std) == pytest.approx((float(means[i]), float(stds[i])), rel=1e-8)
        want = Estimate.lognormal(float(cm[i]), float(cs[i]), 0.8)
        assert (p.cost.mean, p.cost.std) == pytest.approx((want.mean, want.std), rel=1e-8)
        far = float(latent[i] / (prior * std_y)) > 0.9
        assert far <= p.extrapolating  # far from every observation is always flagged


def test_std_factor_is_estimated_again_only_once_the_data_grew_by_a_quarter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each estimate refits the GP on 5 folds; a campaign refits every round, so the factor
    # is kept until the training points grew by RECALIBRATE_GROWTH, and saved with the model
    import surrogates.gp_calibration as gp_module

    calls: list[int] = []
    real = gp_module.cv_scale

    def counting(model, seed):  # type: ignore[no-untyped-def]
        calls.append(int(model.train_inputs[0].shape[-2]))
        return real(model, seed)

    monkeypatch.setattr(gp_module, "cv_scale", counting)
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    g = torch.Generator().manual_seed(4)
    x = torch.rand(40, generator=g, dtype=torch.double)
    experiments = _experiments([{"x": float(v)} for v in x])
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": float(_sine(v))}, cost=1.0 + float(v))
        for e, v in zip(experiments, x, strict=True)
    ]
    model = GPWorldModel(space, ["y"], seed=0)
    seen = []
    for n in (20, 24, 26, 40):  # 24 and 25 are within 1.25 x 20; 26 is not; 40 > 1.25 x 26
        model.fit(experiments[:n], observations[:n])
        p = model.predict([{"x": 0.5}])[0]
        seen.append((len(calls), p.outcomes["y"].std))
    assert [s[0] for s in seen] == [2, 2, 4, 6]  # outcome and log cost, estimated at 20, 26, 40
    assert calls == [20, 20, 26, 26, 40, 40]
    assert model._factors.scales["y"] == pytest.approx(real(model._models["y"], 0))
    # a loaded model keeps both the factors and the counts they were estimated at
    loaded = GPWorldModel(space, ["y"], seed=0)
    loaded.load_state(*model.state())
    assert loaded._factors.scales == model._factors.scales
    assert loaded._factors.n == {"y": 40, COST: 40}
    assert len(calls) == 6
