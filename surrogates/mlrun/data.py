"""Run tables: LCDB learning curves and users' own run logs, in one tidy form, with a cache.

A *run table* is a pandas frame with one row per (data set, learner, training size):

========== =====================================================================
column     meaning
========== =====================================================================
dataset    data set name (str)
learner    learner name (str), e.g. ``sklearn.ensemble.RandomForestClassifier``
anchor     training-set size (int > 0); the learning curve's x axis
score      test score at that size (accuracy for LCDB), mean over seeds
train_time measured training time in seconds (> 0), mean over seeds
========== =====================================================================

and a *data-set table* with one row per data set: ``dataset`` plus the meta-features in
:data:`META_FEATURES`. LCDB (the ``lcdb`` PyPI package ships its CSVs) is read directly, never
through its own module (which imports packages it does not declare), and converted once to
parquet under the cache directory (``$SCIWM_CACHE`` or ``~/.cache/sciwm``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sciwm.errors import WorldModelError

#: OpenML meta-features used as numeric inputs (all computable for any labelled table).
META_FEATURES: tuple[str, ...] = (
    "NumberOfInstances",
    "NumberOfFeatures",
    "NumberOfClasses",
    "MajorityClassPercentage",
    "MinorityClassPercentage",
    "PercentageOfNumericFeatures",
    "PercentageOfBinaryFeatures",
    "PercentageOfMissingValues",
)
#: Meta-features encoded on a log scale.
LOG_META: frozenset[str] = frozenset({"NumberOfInstances", "NumberOfFeatures", "NumberOfClasses"})

RUN_COLUMNS: tuple[str, ...] = ("dataset", "learner", "anchor", "score", "train_time")
CACHE_VERSION = "v2"  # lab_connectors/replay.py reads the same files


def cache_dir() -> Path:
    """The sciwm cache directory: ``$SCIWM_CACHE`` or ``~/.cache/sciwm`` (created)."""
    root = Path(os.environ.get("SCIWM_CACHE") or Path.home() / ".cache" / "sciwm")
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class RunData:
    """Learning curves and the data sets they were measured on.

    Attributes:
        runs: The run table (columns :data:`RUN_COLUMNS`).
        datasets: One row per data set: ``dataset`` and :data:`META_FEATURES`.
        source: Where the data came from (for training summaries).
    """

    runs: pd.DataFrame
    datasets: pd.DataFrame
    source: str

    def __post_init__(self) -> None:
        check_runs(self.runs, self.source)
        missing = [c for c in ("dataset", *META_FEATURES) if c not in self.datasets.columns]
        if missing:
            raise WorldModelError(
                f"{self.source}: the data-set table lacks meta-feature column(s) {missing}; "
                "compute them with surrogates.mlrun.data.meta_features(X, y)"
            )
        unknown = sorted(set(self.runs["dataset"]) - set(self.datasets["dataset"]))
        if unknown:
            raise WorldModelError(
                f"{self.source}: runs on data set(s) {unknown[:5]} have no meta-features; "
                "add them to the data-set table"
            )

    def subset(self, datasets: list[str] | set[str]) -> RunData:
        """The runs and meta-features of some data sets only."""
        keep = set(datasets)
        return RunData(
            self.runs[self.runs["dataset"].isin(keep)].reset_index(drop=True),
            self.datasets[self.datasets["dataset"].isin(keep)].reset_index(drop=True),
            self.source,
        )

    @property
    def dataset_names(self) -> list[str]:
        """Sorted names of the data sets with runs."""
        return sorted(self.runs["dataset"].unique())

    def meta(self, dataset: str) -> dict[str, float]:
        """Meta-features of one data set."""
        row = self.datasets[self.datasets["dataset"] == dataset]
        if row.empty:
            raise WorldModelError(f"no meta-features for data set {dataset!r} in {self.source}")
        return {k: float(row.iloc[0][k]) for k in META_FEATURES}


def check_runs(runs: pd.DataFrame, source: str) -> None:
    """Validate a run table.

    Raises:
        WorldModelError: On missing columns, NaN or infinite scores/times, non-positive sizes.
    """
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise WorldModelError(
            f"{source}: run log lacks column(s) {missing}; it needs {list(RUN_COLUMNS)}"
        )
    for col in ("score", "train_time", "anchor"):
        values = pd.to_numeric(runs[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise WorldModelError(
                f"{source}: {int(bad.sum())} row(s) have a NaN, infinite or non-numeric "
                f"{col!r} (first at row {i}: {runs[col].iloc[i]!r}); drop or fix them"
            )
        if col in ("train_time", "anchor") and (values <= 0).any():
            raise WorldModelError(f"{source}: {col!r} must be positive in every row")


# -- LCDB ------------------------------------------------------------------------------------
def lcdb_package_dir() -> Path:
    """Folder of the installed ``lcdb`` package (found without importing it).

    Raises:
        WorldModelError: If ``lcdb`` is not installed or lacks its CSV files.
    """
    spec = importlib.util.find_spec("lcdb")
    if spec is None or not spec.submodule_search_locations:
        raise WorldModelError(
            "the LCDB data is not installed; run `pip install lcdb==0.1.0` (it ships the "
            "learning curves as CSV files)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / "database-accuracy.csv").is_file():
        raise WorldModelError(f"{folder} lacks database-accuracy.csv; reinstall lcdb==0.1.0")
    return folder


def build_lcdb_cache(
    metric: str = "accuracy", target: Path | None = None, source: Path | None = None
) -> Path:
    """Convert LCDB's CSVs to a compact parquet cache (mean over seeds per anchor).

    Args:
        metric: LCDB metric file: ``accuracy``, ``auc``, ``f1`` or ``logloss``.
        target: Cache folder (default ``cache_dir() / "lcdb"``).
        source: Folder with LCDB's CSV files (default: the installed ``lcdb`` package).

    Returns:
        The folder holding ``runs-<metric>.parquet`` and ``datasets.parquet``.
    """
    src = source or lcdb_package_dir()
    csv = src / f"database-{metric}.csv"
    if not csv.is_file():
        raise WorldModelError(f"LCDB has no metric {metric!r}; use accuracy, auc, f1 or logloss")
    target = target or cache_dir() / "lcdb"
    target.mkdir(parents=True, exist_ok=True)
    raw = pd.read_csv(
        csv,
        engine="pyarrow",
        usecols=["openmlid", "learner", "size_train", "traintime", "score_test"],
    )
    runs = (
        raw.groupby(["openmlid", "learner", "size_train"], sort=True)
        .agg(score=("score_test", "mean"), train_time=("traintime", "mean"))
        .reset_index()
    )
    meta = pd.read_csv(src / "datasets.csv")
    meta["MajorityClassPercentage"] = 100.0 * meta["MajorityClassSize"] / meta["NumberOfInstances"]
    # Names are not unique in OpenML: qualify repeated ones with their id.
    dup = meta["Name"].duplicated(keep=False)
    meta["dataset"] = meta["Name"].where(~dup, meta["Name"] + "-" + meta["openmlid"].astype(str))
    meta = meta.dropna(subset=list(META_FEATURES))
    names = dict(zip(meta["openmlid"], meta["dataset"], strict=True))
    runs = runs[runs["openmlid"].isin(names)].copy()
    runs["dataset"] = runs["openmlid"].map(names)
    runs = runs.rename(columns={"size_train": "anchor"})
    # Timers of LCDB have a resolution of ~1e-4 s; zero times are below it.
    runs["train_time"] = runs["train_time"].clip(lower=1e-4)
    runs = runs[["dataset", "learner", "anchor", "score", "train_time", "openmlid"]]
    datasets = meta[["dataset", "openmlid", *META_FEATURES]].reset_index(drop=True)
    runs.to_parquet(target / f"runs-{metric}-{CACHE_VERSION}.parquet", index=False)
    datasets.to_parquet(target / f"datasets-{CACHE_VERSION}.parquet", index=False)
    return target


def load_lcdb(
    metric: str = "accuracy", cache: Path | None = None, progress: bool = False
) -> RunData:
    """LCDB learning curves, building the parquet cache on first use (~15 s on 2 cores).

    Args:
        metric: LCDB metric (``accuracy`` by default).
        cache: Cache folder (default ``cache_dir() / "lcdb"``).
        progress: Print a line while the cache is built.
    """
    folder = cache or cache_dir() / "lcdb"
    runs_file = folder / f"runs-{metric}-{CACHE_VERSION}.parquet"
    meta_file = folder / f"datasets-{CACHE_VERSION}.parquet"
    if not (runs_file.is_file() and meta_file.is_file()):
        t0 = time.time()
        if progress:
            print(f"building the LCDB cache in {folder} (once) ...", flush=True)
        build_lcdb_cache(metric, folder)
        if progress:
            print(f"  done in {time.time() - t0:.0f} s", flush=True)
    return RunData(pd.read_parquet(runs_file), pd.read_parquet(meta_file), f"lcdb-{metric}")


def load_slice(path: Path) -> RunData:
    """A committed slice written by :func:`write_slice` (one parquet with both tables)."""
    frame = pd.read_parquet(path)
    runs = frame[frame["kind"] == "run"][list(RUN_COLUMNS)].reset_index(drop=True)
    runs["anchor"] = runs["anchor"].astype(int)
    ds = frame[frame["kind"] == "dataset"][["dataset", *META_FEATURES]].reset_index(drop=True)
    return RunData(runs, ds, f"slice:{path.name}")


def write_slice(data: RunData, datasets: list[str], path: Path) -> Path:
    """Write a small slice of ``data`` (some data sets) as one parquet file."""
    part = data.subset(datasets)
    runs = part.runs[list(RUN_COLUMNS)].assign(kind="run")
    ds = part.datasets[["dataset", *META_FEATURES]].assign(kind="dataset")
    pd.concat([runs, ds], ignore_index=True).to_parquet(path, index=False)
    return path


# -- user logs -------------------------------------------------------------------------------
def load_runs_csv(
    path: str | Path, datasets: pd.DataFrame | Mapping[str, Mapping[str, float]]
) -> RunData:
    """A user's run log from CSV (columns :data:`RUN_COLUMNS`) with its data sets' meta-features.

    Args:
        path: CSV file, one row per (data set, learner, training size).
        datasets: A data-set table, or ``{name: {meta-feature: value}}``.
    """
    path = Path(path)
    if not path.is_file():
        raise WorldModelError(f"run log {path} does not exist")
    runs = pd.read_csv(path)
    return RunData(runs, dataset_table(datasets), str(path))


def dataset_table(
    datasets: pd.DataFrame | Mapping[str, Mapping[str, float]],
) -> pd.DataFrame:
    """Normalise ``{name: meta}`` or a frame into a data-set table, checking every feature."""
    if isinstance(datasets, pd.DataFrame):
        return datasets
    rows = []
    for name, meta in datasets.items():
        missing = [k for k in META_FEATURES if k not in meta]
        if missing:
            raise WorldModelError(
                f"data set {name!r} lacks meta-feature(s) {missing}; compute them with "
                "surrogates.mlrun.data.meta_features(X, y)"
            )
        values = {k: float(meta[k]) for k in META_FEATURES}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise WorldModelError(f"data set {name!r}: meta-feature(s) {bad} are not finite")
        rows.append({"dataset": str(name), **values})
    return pd.DataFrame(rows, columns=["dataset", *META_FEATURES])


def meta_features(X: Any, y: Any) -> dict[str, float]:
    """The :data:`META_FEATURES` of a labelled table, as OpenML defines them.

    Args:
        X: ``n x d`` array of features (NaN marks a missing value).
        y: ``n`` class labels.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise WorldModelError("meta_features needs an n x d array X and n labels y")
    n, d = X.shape
    _, counts = np.unique(y, return_counts=True)
    binary = sum(len(np.unique(col[np.isfinite(col)])) == 2 for col in X.T)
    missing = ~np.isfinite(X)
    return {
        "NumberOfInstances": float(n),
        "NumberOfFeatures": float(d + 1),  # OpenML counts the target
        "NumberOfClasses": float(len(counts)),
        "MajorityClassPercentage": 100.0 * counts.max() / n,
        "MinorityClassPercentage": 100.0 * counts.min() / n,
        "PercentageOfNumericFeatures": 100.0 * d / (d + 1),
        "PercentageOfBinaryFeatures": 100.0 * binary / (d + 1),
        "PercentageOfMissingValues": 100.0 * missing.sum() / max(1, missing.size),
    }


def final_targets(data: RunData) -> pd.DataFrame:
    """Per (data set, learner): score and train time at the data set's largest anchor.

    Learners that did not reach the data set's largest anchor are left out (as in LCDB's own
    analyses). Columns: ``dataset, learner, anchor, score, train_time``.
    """
    runs = data.runs
    top = runs.groupby("dataset")["anchor"].transform("max")
    return runs[runs["anchor"] == top][list(RUN_COLUMNS)].reset_index(drop=True)


def partial_curves(
    data: RunData, fraction: float = 0.1
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Observed prefix of every curve: anchors up to ``fraction`` of the data set's largest.

    Returns:
        ``{(dataset, learner): (anchors, scores, train_times)}`` (sorted by anchor; possibly
        empty arrays).
    """
    runs = data.runs
    top = runs.groupby("dataset")["anchor"].transform("max")
    part = runs[runs["anchor"] <= fraction * top].sort_values("anchor")
    out: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, g in part.groupby(["dataset", "learner"], sort=False):
        out[(str(key[0]), str(key[1]))] = (
            g["anchor"].to_numpy(float),
            g["score"].to_numpy(float),
            g["train_time"].to_numpy(float),
        )
    return out


if __name__ == "__main__":  # pragma: no cover - the command that made the test slice
    import sys

    full = load_lcdb(progress=True)
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "lcdb_slice.parquet")
    names = full.dataset_names
    pick = [names[i] for i in np.random.default_rng(0).choice(len(names), 16, replace=False)]
    # Keep the slice small: data sets with at most 20,000 training rows.
    small = [n for n in names if full.runs[full.runs.dataset == n].anchor.max() <= 20000]
    pick = sorted(set(pick) & set(small))[:12] or small[:12]
    write_slice(full, pick, out)
    print(f"wrote {out} with data sets {pick}")
