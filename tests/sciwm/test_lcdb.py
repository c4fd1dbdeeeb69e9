"""sciwm.lcdb: the LCDB cache, the committed slice, user logs, meta-features, learners."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sciwm.lcdb import RunDataError
from sciwm.lcdb.cache import build_lcdb_cache, lcdb_runs, load_lcdb, load_slice
from sciwm.lcdb.learners import LEARNERS, lcdb_learner, short_learner
from sciwm.lcdb.meta import (
    EXTRA_META,
    EXTRA_WIDTH,
    MAY_BE_MISSING,
    META_FEATURES,
    check_meta,
    extra_fill,
    extra_vector,
    meta_features,
)
from sciwm.lcdb.runs import final_targets, load_runs_csv

SLICE = Path(__file__).parents[1] / "surrogates" / "mlrun" / "data" / "lcdb_slice.parquet"


def fake_lcdb(folder: Path) -> Path:
    """LCDB-shaped CSVs: two data sets (one without meta-features), two seeds per anchor."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (0, 1):
        for anchor, score in ((16, 0.6), (32, 0.7), (64, 0.8)):
            for did in (1, 2):
                rows.append(
                    (
                        did,
                        "SVC_rbf",
                        anchor,
                        10,
                        seed,
                        0,
                        0.0 if seed else 0.02,
                        1.0,
                        score,
                        score + 0.01 * seed,
                    )
                )
    cols = [
        "openmlid",
        "learner",
        "size_train",
        "size_test",
        "outer_seed",
        "inner_seed",
        "traintime",
        "score_train",
        "score_valid",
        "score_test",
    ]
    pd.DataFrame(rows, columns=cols).to_csv(folder / "database-accuracy.csv", index=False)
    meta = {k: [1.0, np.nan] for k in META_FEATURES if k != "MajorityClassPercentage"}
    meta.update(openmlid=[1, 2], Name=["one", "two"], MajorityClassSize=[5.0, 5.0])
    meta["NumberOfInstances"] = [100.0, 100.0]
    pd.DataFrame(meta).to_csv(folder / "datasets.csv", index=False)
    return folder


def test_cache_is_built_once_and_averages_seeds(tmp_path: Path) -> None:
    src = fake_lcdb(tmp_path / "src")
    cache = build_lcdb_cache("accuracy", tmp_path / "cache", source=src)
    data = load_lcdb("accuracy", cache=cache)
    assert data.dataset_names == ["one"]  # "two" lacks meta-features: left out
    # the replay connector's run table keeps every data set LCDB names
    assert sorted(lcdb_runs("accuracy", cache=cache)["dataset"].unique()) == ["one", "two"]
    row = data.runs[data.runs["anchor"] == 64].iloc[0]
    assert row["score"] == pytest.approx(0.805)  # mean over the two seeds
    assert row["train_time"] == pytest.approx(0.01)
    assert data.runs["train_time"].min() >= 1e-4  # zero timings clipped to the resolution
    assert data.meta("one")["MajorityClassPercentage"] == pytest.approx(5.0)


def test_slice_final_targets_and_extra_meta() -> None:
    data = load_slice(SLICE)
    assert 8 <= len(data.dataset_names) <= 12
    finals = final_targets(data)
    top = data.runs.groupby("dataset")["anchor"].max()
    assert (finals["anchor"].to_numpy() == top.loc[finals["dataset"]].to_numpy()).all()
    letter = data.meta("letter-6")
    assert set(EXTRA_META) <= set(letter)  # the slice keeps LCDB's OpenML meta-features
    assert letter["Dimensionality"] == pytest.approx(
        letter["NumberOfFeatures"] / letter["NumberOfInstances"], rel=1e-3
    )
    with pytest.raises(RunDataError, match="no meta-features"):
        data.meta("no-such-data")


def test_user_log_loads_and_rejects_bad_rows(tmp_path: Path) -> None:
    meta = dict.fromkeys(META_FEATURES, 10.0)
    good = tmp_path / "runs.csv"
    pd.DataFrame(
        [("mine", "RandomForestClassifier", 100, 0.9, 1.5)],
        columns=["dataset", "learner", "anchor", "score", "train_time"],
    ).to_csv(good, index=False)
    data = load_runs_csv(good, {"mine": meta})
    assert data.dataset_names == ["mine"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        [("mine", "RandomForestClassifier", 100, float("inf"), 1.5)],
        columns=["dataset", "learner", "anchor", "score", "train_time"],
    ).to_csv(bad, index=False)
    with pytest.raises(RunDataError, match="NaN, infinite"):
        load_runs_csv(bad, {"mine": meta})
    with pytest.raises(RunDataError, match="lacks meta-feature"):
        load_runs_csv(good, {"mine": {"NumberOfInstances": 5.0}})
    with pytest.raises(RunDataError, match="no meta-features"):
        load_runs_csv(good, {"other": meta})


def test_meta_features_of_a_table() -> None:
    X = np.array([[0.0, 1.0], [1.0, np.nan], [0.0, 3.0], [1.0, 4.0]])
    y = np.array([0, 0, 0, 1])
    m = meta_features(X, y)
    assert m["NumberOfInstances"] == 4 and m["NumberOfClasses"] == 2
    assert m["MajorityClassPercentage"] == pytest.approx(75.0)
    assert m["PercentageOfMissingValues"] == pytest.approx(12.5)
    assert m["PercentageOfBinaryFeatures"] == pytest.approx(100 / 3)


def test_extra_vector_derives_fills_and_flags() -> None:
    base = dict(zip(META_FEATURES, (1000, 11, 2, 60, 40, 100 * 8 / 11, 0, 0), strict=True))
    given = {**base, "NaiveBayesErrRate": 0.2, "ClassEntropy": 0.97}
    fill = extra_fill([given, {**given, "NaiveBayesErrRate": 0.4}])
    assert fill["NaiveBayesErrRate"] == pytest.approx(0.3)  # median of the two
    vec = dict(
        zip(
            [*EXTRA_META, *(f"{k}_missing" for k in MAY_BE_MISSING)],
            extra_vector(base, fill),
            strict=True,
        )
    )
    assert len(vec) == EXTRA_WIDTH
    assert vec["Dimensionality"] == pytest.approx(math.log1p(11 / 1000))  # from the 8
    assert vec["NumberOfSymbolicFeatures"] == pytest.approx(math.log1p(3))  # 11 - 8 numeric
    assert vec["PercentageOfInstancesWithMissingValues"] == 0.0  # no missing values at all
    assert vec["NaiveBayesErrRate"] == pytest.approx(0.3) and vec["NaiveBayesErrRate_missing"] == 1
    known = dict(zip(vec, extra_vector(given, fill), strict=True))
    assert (
        known["NaiveBayesErrRate"] == pytest.approx(0.2) and known["NaiveBayesErrRate_missing"] == 0
    )
    with pytest.raises(RunDataError, match="unknown meta-feature"):
        check_meta("x", {**base, "Colour": 1.0})
    with pytest.raises(RunDataError, match="not finite"):
        check_meta("x", {**base, "NumberOfClasses": float("nan")})


def test_meta_features_match_openml_on_a_sorted_table() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.repeat([0, 1], 20)  # sorted by class, as some OpenML tables are
    m = meta_features(X, y)
    assert m["ClassEntropy"] == pytest.approx(1.0)
    assert m["AutoCorrelation"] == pytest.approx(38 / 39)  # one class change in 39 pairs
    assert m["Dimensionality"] == pytest.approx(4 / 40)
    assert 0.0 <= m["NaiveBayesErrRate"] <= 0.8 and -1.0 <= m["NaiveBayesKappa"] <= 1.0
    assert abs(m["MeanSkewnessOfNumericAtts"]) < 1.5


def test_learner_vocabulary() -> None:
    assert len(LEARNERS) == 20
    svc = lcdb_learner("sklearn.svm.SVC_rbf")
    assert svc is not None and svc.path == "sklearn.svm.SVC" and svc.kwargs == {"kernel": "rbf"}
    assert (
        lcdb_learner("sklearn.ensemble.RandomForestClassifier")
        is LEARNERS["RandomForestClassifier"]
    )
    assert lcdb_learner("TorchMLP") is None
    assert short_learner("a.b.C") == "C"
    for name, learner in LEARNERS.items():
        assert learner.note and (learner.path.endswith(name) or name.startswith("SVC_"))
