"""Run tables: building the LCDB cache, the committed slice, user logs, meta-features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sciwm.errors import WorldModelError
from surrogates.mlrun.data import (
    META_FEATURES,
    build_lcdb_cache,
    final_targets,
    load_lcdb,
    load_runs_csv,
    load_slice,
    meta_features,
    partial_curves,
)

SLICE = Path(__file__).parent / "data" / "lcdb_slice.parquet"


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
    row = data.runs[data.runs["anchor"] == 64].iloc[0]
    assert row["score"] == pytest.approx(0.805)  # mean over the two seeds
    assert row["train_time"] == pytest.approx(0.01)
    assert data.runs["train_time"].min() >= 1e-4  # zero timings clipped to the resolution
    assert data.meta("one")["MajorityClassPercentage"] == pytest.approx(5.0)


def test_slice_final_targets_and_partial_curves() -> None:
    data = load_slice(SLICE)
    assert 8 <= len(data.dataset_names) <= 12
    finals = final_targets(data)
    top = data.runs.groupby("dataset")["anchor"].max()
    assert (finals["anchor"].to_numpy() == top.loc[finals["dataset"]].to_numpy()).all()
    curves = partial_curves(data, 0.1)
    for (ds, _), (anchors, scores, times) in curves.items():
        assert anchors.max() <= 0.1 * top[ds] and len(anchors) == len(scores) == len(times)
        assert (np.diff(anchors) > 0).all()


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
    with pytest.raises(WorldModelError, match="NaN, infinite"):
        load_runs_csv(bad, {"mine": meta})
    with pytest.raises(WorldModelError, match="lacks meta-feature"):
        load_runs_csv(good, {"mine": {"NumberOfInstances": 5.0}})
    with pytest.raises(WorldModelError, match="no meta-features"):
        load_runs_csv(good, {"other": meta})


def test_meta_features_of_a_table() -> None:
    X = np.array([[0.0, 1.0], [1.0, np.nan], [0.0, 3.0], [1.0, 4.0]])
    y = np.array([0, 0, 0, 1])
    m = meta_features(X, y)
    assert m["NumberOfInstances"] == 4 and m["NumberOfClasses"] == 2
    assert m["MajorityClassPercentage"] == pytest.approx(75.0)
    assert m["PercentageOfMissingValues"] == pytest.approx(12.5)
    assert m["PercentageOfBinaryFeatures"] == pytest.approx(100 / 3)
