"""The conformance suite every world model's tests inherit.

A world model's test module subclasses :class:`WorldModelConformance` and provides one
class-scoped fixture, ``model_factory``: a callable that builds a fresh, *unfitted* model on
the space and outcomes it is given. It may also override ``space``, ``outcome_names`` or
``data_generator`` (a callable ``(n, seed) -> (experiments, observations)``) when the model
needs data of a particular shape, and ``calibration_case``
(:class:`~sciwm.testing.world_model_calibration.CalibrationCase`: a known distribution in the
model's own domain, with each outcome's declared range) for the calibration check::

    class TestGPConformance(WorldModelConformance):
        @pytest.fixture(scope="class")
        def model_factory(self):
            return lambda space, outcomes: GPWorldModel(space, outcomes)

The checks are those of the ``WorldModel`` contract (sciwm/world_model.py): predictions with
ordered intervals at the requested level and positive costs, botorch posteriors of shape
``b x q x 1`` usable by acquisition functions, save/load without pickle, clear errors before
fitting and for unknown outcomes, a summary of what the model was trained on, and calibration:
on data from a known distribution the 90 % intervals of ``predict`` hold 85–95 % of fresh
draws, for every outcome and for cost, and stay in each outcome's declared range. The default
data come from :func:`~sciwm.testing.world_model_data.make_data` (importable from here too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from botorch.acquisition import LogExpectedImprovement

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.prediction import Prediction
from sciwm.space import Parameter, SearchSpace
from sciwm.testing.world_model_calibration import (
    CalibrationCase,
    CalibrationReport,
    DataGenerator,
    ModelFactory,
    check_calibration,
    default_calibration_case,
    measure_calibration,
)
from sciwm.testing.world_model_data import (
    log_linear_cost,
    make_calibration_data,
    make_data,
    smooth_outcome,
)
from sciwm.world_model import WorldModel

__all__ = [
    "CalibrationCase",
    "CalibrationReport",
    "DataGenerator",
    "ModelFactory",
    "WorldModelConformance",
    "log_linear_cost",
    "check_calibration",
    "default_calibration_case",
    "make_calibration_data",
    "make_data",
    "measure_calibration",
    "smooth_outcome",
]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


class WorldModelConformance:
    """Checks every :class:`~sciwm.world_model.WorldModel` must pass.

    Subclasses provide ``model_factory``; the rest has defaults. Fixtures are class-scoped so
    that the model is fitted once per class; tests must not mutate the fitted model.
    """

    #: Number of training experiments.
    n_train: int = 24

    @pytest.fixture(scope="class", autouse=True)
    def _one_thread(self) -> Iterator[None]:
        """Tiny models fit several times faster on one thread (no OpenMP contention)."""
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    @pytest.fixture(scope="class")
    def model_factory(self) -> ModelFactory:
        """Build a fresh unfitted model: ``(space, outcomes) -> WorldModel``. Override."""
        raise NotImplementedError("a conformance subclass must provide model_factory")

    @pytest.fixture(scope="class")
    def space(self) -> SearchSpace:
        """A small mixed space: linear float, log float, int."""
        return SearchSpace(
            (
                Parameter("x", "float", 0.0, 1.0),
                Parameter("lr", "float", 1e-3, 1.0, log=True),
                Parameter("n", "int", 1, 9),
            )
        )

    @pytest.fixture(scope="class")
    def outcome_names(self) -> list[str]:
        """Outcomes the model is built for."""
        return ["y", "z"]

    @pytest.fixture(scope="class")
    def data_generator(self, space: SearchSpace, outcome_names: list[str]) -> DataGenerator:
        """``(n, seed) -> (experiments, observations)`` on ``space``."""
        return lambda n, seed: make_data(space, outcome_names, n, seed)

    @pytest.fixture(scope="class")
    def calibration_case(self, space: SearchSpace, outcome_names: list[str]) -> CalibrationCase:
        """The known distribution of the calibration check: by default
        :func:`~sciwm.testing.world_model_data.make_calibration_data` on ``space`` (a slowly
        varying function plus Gaussian noise of std 0.1, log-normal cost; unbounded
        outcomes), 60 training points. Override with one in the model's own domain."""
        return default_calibration_case(space, list(outcome_names))

    @pytest.fixture(scope="class")
    def training(self, data_generator: DataGenerator) -> tuple[list[Experiment], list[Observation]]:
        return data_generator(self.n_train, 0)

    @pytest.fixture(scope="class")
    def fitted(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        training: tuple[list[Experiment], list[Observation]],
    ) -> WorldModel:
        model = model_factory(space, list(outcome_names))
        model.fit(*training)
        return model

    @pytest.fixture(scope="class")
    def queries(self, data_generator: DataGenerator) -> list[dict]:
        experiments, _ = data_generator(7, 1)
        return [dict(e.parameters) for e in experiments]

    # -- before fitting -------------------------------------------------------------------
    def test_predict_before_fit_raises(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        tmp_path: Path,
    ) -> None:
        model = model_factory(space, list(outcome_names))
        assert not model.is_fitted
        query = space.sample(1, generator=torch.Generator().manual_seed(0))
        with pytest.raises(WorldModelError):
            model.predict(query)
        with pytest.raises(WorldModelError):
            model.posterior(
                torch.full((1, 1, space.dim), 0.5, dtype=torch.double), outcome_names[0]
            )
        with pytest.raises(WorldModelError):
            model.save(tmp_path / "never-written")
        assert not (tmp_path / "never-written").exists()

    def test_can_fit_on_the_training_data_and_with_nothing_as_it_says(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        training: tuple[list[Experiment], list[Observation]],
    ) -> None:
        """``can_fit`` is what the loop asks before fitting: it must keep its word."""
        model = model_factory(space, list(outcome_names))
        assert model.can_fit(*training), "can_fit refuses the suite's training data"
        if not model.can_fit([], []):
            return
        # a world model that predicts before any real result: fit([], []) must work
        model.fit([], [])
        assert model.is_fitted
        query = space.sample(2, generator=torch.Generator().manual_seed(3))
        preds = model.predict(query)
        assert len(preds) == 2
        assert all(p.cost.mean > 0 and set(outcome_names) <= set(p.outcomes) for p in preds)

    def test_fit_rejects_misaligned_inputs(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        training: tuple[list[Experiment], list[Observation]],
    ) -> None:
        experiments, observations = training
        model = model_factory(space, list(outcome_names))
        with pytest.raises(WorldModelError, match="aligned"):
            model.fit(experiments, observations[:-1])

    # -- predictions ----------------------------------------------------------------------
    def test_predict_one_prediction_per_query(
        self, fitted: WorldModel, queries: list[dict], outcome_names: list[str]
    ) -> None:
        predictions = fitted.predict(queries)
        assert len(predictions) == len(queries)
        for p in predictions:
            assert isinstance(p, Prediction)
            assert set(p.outcomes) == set(outcome_names)
            for est in p.outcomes.values():
                assert all(math.isfinite(v) for v in (est.mean, est.std, est.lower, est.upper))
                assert est.std >= 0
                assert est.lower <= est.mean <= est.upper
            json.dumps(p.to_dict())  # JSON-serialisable, as the store logs it
        assert fitted.predict([]) == []

    def test_cost_estimates_positive(self, fitted: WorldModel, queries: list[dict]) -> None:
        for p in fitted.predict(queries):
            c = p.cost
            assert c.mean > 0 and c.std >= 0
            assert 0 < c.lower <= c.upper
            assert math.isfinite(c.upper)

    @pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
    def test_interval_level_honoured(
        self, fitted: WorldModel, queries: list[dict], level: float
    ) -> None:
        wide = fitted.predict(queries, level=0.99)
        at_level = fitted.predict(queries, level=level)
        narrower = 0
        for pw, pl in zip(wide, at_level, strict=True):
            for name, est in pl.outcomes.items():
                ref = pw.outcomes[name]
                assert est.level == pytest.approx(level)
                # The level changes the interval, not the distribution.
                assert _close(est.mean, ref.mean) and _close(est.std, ref.std)
                assert ref.lower <= est.lower <= est.upper <= ref.upper
                # Strictly narrower, unless both already span the outcome's valid range.
                pinned = est.lower == ref.lower and est.upper == ref.upper
                if est.std > 0:
                    assert est.upper - est.lower < ref.upper - ref.lower or pinned
                narrower += est.upper - est.lower < ref.upper - ref.lower
            assert pl.cost.level == pytest.approx(level)
            assert pw.cost.lower <= pl.cost.lower <= pl.cost.upper <= pw.cost.upper
        assert narrower > 0, "no interval got narrower at a lower level"

    def test_intervals_calibrated_on_a_known_distribution(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        calibration_case: CalibrationCase,
    ) -> None:
        """90 % intervals hold 85-95 % of fresh draws and stay in the declared ranges."""
        check_calibration(model_factory, space, list(outcome_names), calibration_case)

    @pytest.mark.parametrize("level", [0.0, 1.0, 90.0])
    def test_bad_level_raises(self, fitted: WorldModel, queries: list[dict], level: float) -> None:
        with pytest.raises(WorldModelError, match="level"):
            fitted.predict(queries[:1], level=level)

    # -- botorch --------------------------------------------------------------------------
    def test_posterior_shape(
        self, fitted: WorldModel, space: SearchSpace, outcome_names: list[str]
    ) -> None:
        X = torch.rand(4, 3, space.dim, generator=torch.Generator().manual_seed(2)).double()
        for name in outcome_names:
            post = fitted.posterior(X, name)
            assert post.mean.shape == (4, 3, 1)
            assert post.variance.shape == (4, 3, 1)
            assert bool((post.variance >= 0).all())
        cost_post = fitted.log_cost_posterior(X)
        assert cost_post.mean.shape == (4, 3, 1)

    def test_posterior_matches_predict_mean(
        self, fitted: WorldModel, space: SearchSpace, queries: list[dict], outcome_names: list[str]
    ) -> None:
        X = space.encode(queries).unsqueeze(-2)  # n x 1 x d
        predictions = fitted.predict(queries)
        for name in outcome_names:
            mean = fitted.posterior(X, name).mean.squeeze(-1).squeeze(-1)
            for m, p in zip(mean.tolist(), predictions, strict=True):
                assert m == pytest.approx(p.outcomes[name].mean, rel=1e-5, abs=1e-6)

    def test_outcome_model_in_acquisition(
        self,
        fitted: WorldModel,
        space: SearchSpace,
        outcome_names: list[str],
        training: tuple[list[Experiment], list[Observation]],
    ) -> None:
        name = outcome_names[0]
        best = max(o.outcomes[name] for o in training[1])
        acq = LogExpectedImprovement(fitted.outcome_model(name), best_f=best)
        X = torch.rand(5, 1, space.dim, generator=torch.Generator().manual_seed(3)).double()
        X.requires_grad_(True)
        values = acq(X)
        assert values.shape == (5,)
        assert bool(torch.isfinite(values).all())
        values.sum().backward()  # gradient-based optimisers need this
        assert X.grad is not None and bool(torch.isfinite(X.grad).all())
        cost_model = fitted.log_cost_model()
        assert cost_model.posterior(X.detach()).mean.shape == (5, 1, 1)

    # -- errors ---------------------------------------------------------------------------
    def test_unknown_outcome_raises(self, fitted: WorldModel, space: SearchSpace) -> None:
        X = torch.full((1, 1, space.dim), 0.5, dtype=torch.double)
        with pytest.raises(WorldModelError, match="no_such_outcome"):
            fitted.posterior(X, "no_such_outcome")
        with pytest.raises(WorldModelError, match="no_such_outcome"):
            fitted.outcome_model("no_such_outcome")

    # -- persistence ----------------------------------------------------------------------
    def test_save_load_round_trip(
        self, fitted: WorldModel, queries: list[dict], tmp_path: Path
    ) -> None:
        directory = fitted.save(tmp_path / "wm")
        files = sorted(p.name for p in directory.iterdir())
        assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
        for f in directory.iterdir():
            if f.suffix == ".json":
                json.loads(f.read_text())
            else:
                # Only tensors (and plain containers of them): no arbitrary objects.
                torch.load(f, weights_only=True)

        loaded = WorldModel.load(directory)
        assert type(loaded) is type(fitted)
        assert loaded.outcomes == fitted.outcomes
        assert loaded.space == fitted.space
        assert loaded.summary == fitted.summary
        before, after = fitted.predict(queries), loaded.predict(queries)
        for a, b in zip(before, after, strict=True):
            assert a.extrapolating == b.extrapolating
            for name in a.outcomes:
                ea, eb = a.outcomes[name], b.outcomes[name]
                assert _close(ea.mean, eb.mean) and _close(ea.std, eb.std), name
            assert _close(a.cost.mean, b.cost.mean) and _close(a.cost.std, b.cost.std)

    def test_load_rejects_non_model_directory(self, tmp_path: Path) -> None:
        with pytest.raises(WorldModelError, match="no saved world model"):
            WorldModel.load(tmp_path)

    def test_load_rejects_tampered_directory(self, fitted: WorldModel, tmp_path: Path) -> None:
        directory = fitted.save(tmp_path / "wm")
        config_path = directory / "world_model.json"
        config = json.loads(config_path.read_text())
        config["class"] = "sciwm.space:Parameter"
        config_path.write_text(json.dumps(config))
        with pytest.raises(WorldModelError, match="not a subclass of sciwm.world_model.WorldModel"):
            WorldModel.load(directory)
        config["class"] = "no_such_package.models:Model"
        config_path.write_text(json.dumps(config))
        with pytest.raises(WorldModelError, match="no_such_package"):
            WorldModel.load(directory)
        config_path.write_text("{not json")
        with pytest.raises(WorldModelError, match="not a valid saved world model"):
            WorldModel.load(directory)

    # -- what it was trained on -----------------------------------------------------------
    def test_summary_records_training(
        self,
        fitted: WorldModel,
        outcome_names: list[str],
        training: tuple[list[Experiment], list[Observation]],
    ) -> None:
        experiments, _ = training
        s = fitted.summary
        assert s is not None and fitted.is_fitted
        assert s.experiment_ids == [e.id for e in experiments]
        assert s.n_observations == len(experiments)
        assert s.n_cost_observations == len(experiments)
        assert s.outcomes == list(outcome_names)
        json.dumps(s.to_dict())

    def test_failed_observations_train_cost_only(
        self,
        model_factory: ModelFactory,
        space: SearchSpace,
        outcome_names: list[str],
        data_generator: DataGenerator,
    ) -> None:
        experiments, observations = data_generator(self.n_train, 4)
        k = 3  # the first k fail (they still cost something)
        observations = [
            Observation.failed(o.experiment_id, "crashed", cost=o.cost) if i < k else o
            for i, o in enumerate(observations)
        ]
        model = model_factory(space, list(outcome_names))
        model.fit(experiments, observations)
        s = model.summary
        assert s is not None
        assert s.n_observations == len(experiments) - k
        assert s.n_cost_observations == len(experiments)
        assert s.experiment_ids == [e.id for e in experiments]
