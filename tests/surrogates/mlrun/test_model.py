"""MLRunWorldModel through the world-model conformance suite, and its LCDB mode."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.lcdb.meta import META_FEATURES
from sciwm.prediction import Estimate
from sciwm.space import Parameter, SearchSpace
from sciwm.testing.world_model_suite import WorldModelConformance
from surrogates.mlrun.landmarks import own_weight
from surrogates.mlrun.model import MLRunWorldModel


class TestMLRunConformance(WorldModelConformance):
    """``pretrain = 'none'``: trained from scratch on the campaign's runs (hashing encoder)."""

    @pytest.fixture(scope="class")
    def model_factory(self):
        return lambda space, outcomes: MLRunWorldModel(
            space, outcomes, encoder="hashing", steps=150, n_members=3
        )

    @pytest.mark.xfail(
        strict=True,
        reason="known miss (issue 10): trained from scratch on 60 runs, the out-of-bag "
        "conformal intervals of z are too wide (seeds 100-102: y 0.906, z 0.965, cost 0.932 "
        "of 720 draws; 0.923 / 0.938 / 0.953 on seeds 200-209): about 45 out-of-bag scores per "
        "fit make each fit's 90% quantile uncertain by several points of coverage",
    )
    def test_intervals_calibrated_on_a_known_distribution(
        self, model_factory, space, outcome_names, calibration_case
    ) -> None:
        super().test_intervals_calibrated_on_a_known_distribution(
            model_factory, space, outcome_names, calibration_case
        )


# -- pretrain = "lcdb" on the committed LCDB slice ---------------------------------------------
SLICE = Path(__file__).parent / "data" / "lcdb_slice.parquet"
DIGITS = dict(zip(META_FEATURES, (1797, 65, 10, 10.2, 9.7, 98.5, 4.6, 0.0), strict=True))
#: The optional OpenML meta-features of digits (sciwm.lcdb.meta.meta_features).
DIGITS_EXTRA = {
    "NaiveBayesErrRate": 0.189,
    "NaiveBayesKappa": 0.790,
    "ClassEntropy": 3.32,
    "AutoCorrelation": 0.092,
    "MeanSkewnessOfNumericAtts": 4.52,
    "MeanKurtosisOfNumericAtts": 109.9,
}
LEARNERS = (
    "SVC_rbf",
    "RandomForestClassifier",
    "DecisionTreeClassifier",
    "BernoulliNB",
    "TorchMLP",
)


def lcdb_space() -> SearchSpace:
    return SearchSpace(
        (
            Parameter("learner", "categorical", choices=LEARNERS),
            Parameter("train_size", "int", 32, 1437, log=True),
        )
    )


LCDB_SETTINGS = {
    "pretrain": "lcdb",
    "encoder": "hashing",
    "learner_param": "learner",
    "anchor_param": "train_size",
    "dataset": "digits",
    "dataset_meta": {"digits": {**DIGITS, **DIGITS_EXTRA}},
    "pretrain_data": str(SLICE),
    "pretrain_steps": 150,
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("SCIWM_CACHE")
    os.environ["SCIWM_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("SCIWM_CACHE")
    else:
        os.environ["SCIWM_CACHE"] = before


@pytest.fixture(scope="module")
def prior_model(cache: Path) -> MLRunWorldModel:
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
    model.fit([], [])  # no real run yet: LCDB alone
    return model


def runs(
    values: list[tuple[str, int, float, float]], campaign: str = "mlrun-test"
) -> tuple[list, list]:
    exps = [
        Experiment.create(campaign, i, {"learner": lr, "train_size": n})
        for i, (lr, n, _, _) in enumerate(values)
    ]
    obs = [
        Observation(e.id, Status.COMPLETED, {"accuracy": acc}, cost=cost)
        for e, (_, _, acc, cost) in zip(exps, values, strict=True)
    ]
    return exps, obs


def test_prior_answers_before_any_run(prior_model: MLRunWorldModel) -> None:
    assert prior_model.summary is not None and prior_model.summary.n_observations == 0
    assert prior_model.summary.extra["pretrained_on"]["n_datasets"] >= 8
    preds = prior_model.predict([{"learner": lr, "train_size": 1437} for lr in LEARNERS])
    for p in preds[:-1]:
        acc = p.outcomes["accuracy"]
        assert 0.0 < acc.mean < 1.2 and acc.lower < acc.mean < acc.upper
        assert p.cost.mean > 0 and not p.extrapolating
    assert preds[-1].extrapolating and "far from the training data" in preds[-1].notes[0]
    assert preds[0].extrapolating_reason is None
    assert preds[-1].extrapolating_reason.startswith("a learner unlike any trained on")
    small = prior_model.predict([{"learner": "SVC_rbf", "train_size": 32}])[0]
    assert small.cost.mean < preds[0].cost.mean  # more data costs more


def test_update_on_real_runs_moves_towards_them(prior_model: MLRunWorldModel, cache: Path) -> None:
    values = [
        ("SVC_rbf", 1000, 0.99, 3.0),
        ("BernoulliNB", 500, 0.40, 0.5),
        ("DecisionTreeClassifier", 200, 0.70, 0.8),
        ("RandomForestClassifier", 100, 0.85, 2.0),
    ]
    exps, obs = runs(values)
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
    model.fit(exps, obs)
    assert model.summary.n_observations == 4 and model.summary.extra["residual_gp"] == [0, 1]
    before = prior_model.predict([e.parameters for e in exps])
    after = model.predict([e.parameters for e in exps])
    for (_, _, acc, cost), b, a in zip(values, before, after, strict=True):
        assert abs(a.outcomes["accuracy"].mean - acc) < abs(b.outcomes["accuracy"].mean - acc)
        assert (
            abs(math.log(a.cost.mean) - math.log(cost))
            < abs(math.log(b.cost.mean) - math.log(cost)) + 0.05
        )
    # a learner no real run has tried keeps (at least) the pretrained model's uncertainty
    q = [{"learner": "TorchMLP", "train_size": 500}]
    unseen, prior = model.predict(q)[0], prior_model.predict(q)[0]
    assert unseen.outcomes["accuracy"].std >= prior.outcomes["accuracy"].std * 0.999
    # botorch sees the updated model too
    X = lcdb_space().encode([e.parameters for e in exps]).unsqueeze(-2)
    post = model.posterior(X, "accuracy")
    assert post.mean.detach().squeeze() == pytest.approx(
        torch.tensor([p.outcomes["accuracy"].mean for p in after]), abs=1e-5
    )


def test_lcdb_mode_bad_settings(cache: Path) -> None:
    with pytest.raises(WorldModelError, match="anchor"):
        MLRunWorldModel(lcdb_space(), ["accuracy"], pretrain="lcdb", learner_param="learner")
    with pytest.raises(WorldModelError, match="neither in LCDB"):
        MLRunWorldModel(
            lcdb_space(),
            ["accuracy"],
            **{**LCDB_SETTINGS, "dataset": "my-data", "dataset_meta": None},
        )
    with pytest.raises(WorldModelError, match="unknown setting"):
        MLRunWorldModel(lcdb_space(), ["accuracy"], colour="blue")
    with pytest.raises(WorldModelError, match="not a parameter"):
        MLRunWorldModel(lcdb_space(), ["accuracy"], learner_param="algo")


def test_settings_are_typed_and_checked_before_anything_runs() -> None:
    from surrogates.mlrun.settings import MLRunSettings

    assert MLRunWorldModel.settings_type is MLRunSettings
    cfg = MLRunWorldModel.check_settings(LCDB_SETTINGS, lcdb_space())
    assert cfg.lcdb and cfg.pretrain_steps == 150 and cfg.anchor is None
    bad = [
        ({"pretrain": "imagenet"}, "pretrain must be one of"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"pretrain_steps": "many"}, "whole number"),
        ({"anchor_param": "learner"}, "numeric"),
        ({"dataset_meta": {"digits": {"NumberOfInstances": 5}}}, "lacks meta-feature"),
        ({"pretrain_data": "/no/such/slice.parquet"}, "no file"),
    ]
    for change, message in bad:
        with pytest.raises(WorldModelError, match=message):
            MLRunWorldModel.check_settings({**LCDB_SETTINGS, **change}, lcdb_space())


def test_a_missing_pretrain_slice_is_refused_up_front_and_when_pretraining_only() -> None:
    """A logged world model is rebuilt to answer questions from anywhere (a notebook, the
    service): its slice is needed only to pretrain, so building it does not look for one."""
    settings = {**LCDB_SETTINGS, "pretrain_data": "no/such/slice.parquet"}
    with pytest.raises(WorldModelError, match="pretrain_data: no file no/such/slice.parquet"):
        MLRunWorldModel.check_settings(settings, lcdb_space())
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **settings)
    with pytest.raises(WorldModelError, match="relative path is read from the working directory"):
        model.fit([], [])


def test_can_fit_before_any_run_only_when_pretrained(cache: Path) -> None:
    assert MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS).can_fit([], [])
    scratch = MLRunWorldModel(lcdb_space(), ["accuracy"], encoder="hashing")
    exps, obs = runs([("SVC_rbf", 100, 0.9, 1.0), ("BernoulliNB", 200, 0.5, 0.2)])
    assert not scratch.can_fit([], []) and not scratch.can_fit(exps, obs)
    exps, obs = runs([("SVC_rbf", 100, 0.9, 1.0)] * 2 + [("BernoulliNB", 200, 0.5, 0.2)])
    assert scratch.can_fit(exps, obs)


def test_a_data_set_with_only_the_8_meta_features_is_still_predicted(cache: Path) -> None:
    settings = {**LCDB_SETTINGS, "dataset_meta": {"digits": DIGITS}}
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **settings)
    model.fit([], [])
    pred = model.predict([{"learner": "SVC_rbf", "train_size": 1437}])[0]
    acc = pred.outcomes["accuracy"]
    assert 0.0 < acc.mean <= 1.0 and acc.std < 1.0  # unknown extras stay bounded


def test_training_size_above_the_largest_trained_on_is_extrapolating(cache: Path) -> None:
    space = SearchSpace(
        (
            Parameter("learner", "categorical", choices=LEARNERS),
            Parameter("train_size", "int", 32, 1_000_000, log=True),
        )
    )
    model = MLRunWorldModel(space, ["accuracy"], **LCDB_SETTINGS)
    model.fit([], [])
    inside, huge = model.predict(
        [{"learner": "SVC_rbf", "train_size": 512}, {"learner": "SVC_rbf", "train_size": 900_000}]
    )
    assert not inside.extrapolating and inside.extrapolating_reason is None
    assert huge.extrapolating
    assert huge.extrapolating_reason.startswith("training size 900000 is above the largest")


def test_one_landmark_run_moves_the_other_learners_answers(
    prior_model: MLRunWorldModel, cache: Path, tmp_path: Path
) -> None:
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
    asked = [{"learner": lr, "train_size": 1437} for lr in LEARNERS[1:4]]
    before = prior_model.predict(asked)
    # a surprising landmark: the fast learner scores far below what the prior expects
    exps, obs = runs([("BernoulliNB", 1437, 0.0, 0.01)])
    model.fit(exps, obs)
    assert model.landmarks and "digits" in model.landmarks.marks
    after = model.predict(asked)
    for b, a in zip(before, after, strict=True):
        eb, ea = b.outcomes["accuracy"], a.outcomes["accuracy"]
        assert ea.mean < eb.mean  # pulled toward the low landmark
        assert ea.std > eb.std  # the prior was wrong here: wider intervals
    X = model.space.encode(asked).unsqueeze(-2)
    post = model.posterior(X, "accuracy").mean.reshape(-1)
    for m, p in zip(post.tolist(), after, strict=True):
        assert m == pytest.approx(p.outcomes["accuracy"].mean, abs=1e-5)
    model.save(tmp_path / "wm")
    from sciwm.world_model import WorldModel

    back = WorldModel.load(tmp_path / "wm").predict(asked)
    for a, c in zip(after, back, strict=True):
        assert c.outcomes["accuracy"].mean == pytest.approx(a.outcomes["accuracy"].mean, abs=1e-6)


def test_runs_of_a_learner_leave_its_other_sizes_uncertain(cache: Path) -> None:
    """A learner's own runs carry over to its other training sizes only partly, also when
    the training size is not declared a fidelity (the demo's space): its intervals there
    keep part of the prior's width instead of collapsing to the residual GP's (which sees
    zero residuals: the own-curve shift reproduces every run it was fitted on)."""
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
    exps, obs = runs(
        [
            ("SVC_rbf", 100, 0.90, 0.02),
            ("SVC_rbf", 200, 0.93, 0.03),
            ("BernoulliNB", 400, 0.80, 0.01),
            ("RandomForestClassifier", 300, 0.91, 0.2),
        ]
    )
    model.fit(exps, obs)
    assert 0 in model.residuals.gps
    far, near = model.predict(
        [{"learner": "SVC_rbf", "train_size": 1437}, {"learner": "SVC_rbf", "train_size": 210}]
    )
    prior = model._prior_moments(model.space.encode([{"learner": "SVC_rbf", "train_size": 1437}]))
    prior_std = float(prior[1][0, 0])
    share = 1 - own_weight(math.log2(1437 / 200)) ** 2
    assert far.outcomes["accuracy"].std == pytest.approx(prior_std * share**0.5, rel=0.2)
    assert near.outcomes["accuracy"].std < far.outcomes["accuracy"].std / 2


def full_covariance_answers(model: MLRunWorldModel, asked: list[dict], level: float) -> list:
    """``(accuracy mean, std, lower, upper, log-cost mean, std)`` per candidate, from each
    candidate's joint Gaussian (``_posterior`` on a ``n x 1 x d`` batch, its full covariance)."""
    from sciwm.prediction import _z

    X = model.space.encode(asked).unsqueeze(-2)
    with torch.no_grad():
        acc = model._posterior(X, 0, noise=True)
        cost = model._posterior(X, 1, noise=True)
    out = []
    for i in range(len(asked)):
        m, s = float(acc.mean[i, 0]), float(acc.variance[i, 0]) ** 0.5
        if 0 in model.residuals.gps:
            lo, hi = m - _z(level) * s, m + _z(level) * s
        else:  # the calibrated half-width of the pretrained model
            size, full = model.predictor.record_sizes([model.mapping.record(asked[i])])
            h = float(model.predictor.interval_halfwidth(0, torch.tensor([s]), level, size, full))
            lo, hi = m - h, m + h
        m, lo, hi = (min(1.0, max(0.0, v)) for v in (m, lo, hi))
        cm, cs = float(cost.mean[i, 0]), float(cost.variance[i, 0]) ** 0.5
        out.append((m, s, lo, hi, cm, cs))
    return out


@pytest.mark.parametrize("with_runs", [False, True])
def test_predict_agrees_with_each_candidates_full_covariance(
    prior_model: MLRunWorldModel, cache: Path, with_runs: bool
) -> None:
    if with_runs:  # residual GPs on both targets, and a landmark
        values = [
            ("SVC_rbf", 1000, 0.97, 3.0),
            ("BernoulliNB", 500, 0.40, 0.5),
            ("DecisionTreeClassifier", 200, 0.70, 0.8),
            ("RandomForestClassifier", 100, 0.85, 2.0),
        ]
        model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
        model.fit(*runs(values))
        assert model.residuals.targets == [0, 1] and model.landmarks
    else:
        model = prior_model
    asked = model.space.sample(40, generator=torch.Generator().manual_seed(5))
    asked.append({"learner": "TorchMLP", "train_size": 1437})  # unseen: extrapolating
    for level in (0.9, 0.5):
        preds = model.predict(asked, level=level)
        ref = full_covariance_answers(model, asked, level)
        for p, (m, s, lo, hi, cm, cs) in zip(preds, ref, strict=True):
            acc = p.outcomes["accuracy"]
            assert (acc.mean, acc.std, acc.lower, acc.upper) == pytest.approx(
                (m, s, lo, hi), rel=1e-6, abs=1e-9
            )
            want = Estimate.lognormal(cm, cs, level)
            assert (p.cost.mean, p.cost.std) == pytest.approx((want.mean, want.std), rel=1e-6)
    # the far-from-data check as before: every input built once per candidate
    pred = model.predictor
    X = model.space.encode(asked)
    x = model.mapping.inputs(pred, X)
    text = pred.text_features([model.mapping.record(a) for a in asked])
    from surrogates.mlrun.heads import Inputs

    reasons = pred.far_reasons(Inputs(text, x.numeric, x.curve), x)
    assert [p.extrapolating_reason for p in preds] == reasons
    assert preds[-1].extrapolating


def test_repeated_questions_reuse_the_predictors_answers_exactly(cache: Path) -> None:
    """Rows asked before are not recomputed, in any order or company, and the landmarks of
    a later fit still move them."""
    model = MLRunWorldModel(lcdb_space(), ["accuracy"], **LCDB_SETTINGS)
    model.fit([], [])
    X = model.space.encode(model.space.sample(12, generator=torch.Generator().manual_seed(2)))

    def uncached(X: Tensor) -> tuple[Tensor, Tensor]:
        recs = model.mapping.runs(X)
        return model._prior_moments(X, recs, model.mapping.inputs(model.predictor, X, recs))

    with torch.no_grad():
        first = model._prior_moments(X)
        assert len(model._moments) == len(torch.unique(X, dim=0))
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
        mixed = torch.cat(
            [X[order][:5], model.space.encode([{"learner": "SVC_rbf", "train_size": 77}])]
        )
        again = model._prior_moments(mixed)
        for got, want in zip(again, uncached(mixed), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(again[0][:5], first[0][order][:5])
        model.fit(*runs([("SVC_rbf", 1000, 0.99, 3.0), ("BernoulliNB", 500, 0.40, 0.5)]))
        assert model.landmarks
        for got, want in zip(model._prior_moments(X), uncached(X), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
