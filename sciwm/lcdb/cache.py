"""LCDB from the ``lcdb`` package's CSV files, converted once to a parquet cache.

LCDB (the ``lcdb`` PyPI package ships its CSVs) is read directly, never through its own module
(which imports packages it does not declare), and converted once to parquet under the cache
directory (``$SCIWM_CACHE`` or ``~/.cache/sciwm``, in ``lcdb/``): a run table (mean over seeds
per data set, learner and training size) and a data-set table with the OpenML meta-features.
The replay connector answers experiments from the run table; the ML-run world model and
``sciwm bench mlrun`` learn from both. A *slice* (:func:`write_slice`) is a few data sets of
it in one parquet file, small enough to commit for tests.

Run as ``python -m sciwm.lcdb.cache SLICE.parquet`` to write the test slice.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sciwm.lcdb import RunDataError
from sciwm.lcdb.meta import EXTRA_META, META_FEATURES
from sciwm.lcdb.runs import RUN_COLUMNS, RunData

#: Version of the cached files' layout (part of their names).
CACHE_VERSION = "v3"
METRICS = ("accuracy", "auc", "f1", "logloss")


def cache_dir() -> Path:
    """The sciwm cache directory: ``$SCIWM_CACHE`` or ``~/.cache/sciwm`` (created)."""
    root = Path(os.environ.get("SCIWM_CACHE") or Path.home() / ".cache" / "sciwm")
    root.mkdir(parents=True, exist_ok=True)
    return root


def lcdb_package_dir() -> Path:
    """Folder of the installed ``lcdb`` package (found without importing it).

    Raises:
        RunDataError: If ``lcdb`` is not installed or lacks its CSV files.
    """
    spec = importlib.util.find_spec("lcdb")
    if spec is None or not spec.submodule_search_locations:
        raise RunDataError(
            "the LCDB data is not installed; run `pip install lcdb==0.1.0` (it ships the "
            "learning curves as CSV files)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / "database-accuracy.csv").is_file():
        raise RunDataError(f"{folder} lacks database-accuracy.csv; reinstall lcdb==0.1.0")
    return folder


def _files(folder: Path, metric: str) -> tuple[Path, Path]:
    return (
        folder / f"runs-{metric}-{CACHE_VERSION}.parquet",
        folder / f"datasets-{CACHE_VERSION}.parquet",
    )


def build_lcdb_cache(
    metric: str = "accuracy", target: Path | None = None, source: Path | None = None
) -> Path:
    """Convert LCDB's CSVs to the parquet cache (mean over seeds per anchor).

    The run table keeps every data set that LCDB names; the data-set table only those with
    all 8 :data:`~sciwm.lcdb.meta.META_FEATURES` (plus their :data:`~sciwm.lcdb.meta.EXTRA_META`).

    Args:
        metric: LCDB metric file: ``accuracy``, ``auc``, ``f1`` or ``logloss``.
        target: Cache folder (default ``cache_dir() / "lcdb"``).
        source: Folder with LCDB's CSV files (default: the installed ``lcdb`` package).

    Returns:
        The cache folder.
    """
    src = source or lcdb_package_dir()
    csv = src / f"database-{metric}.csv"
    if not csv.is_file():
        raise RunDataError(f"LCDB has no metric {metric!r}; use one of {list(METRICS)}")
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
    names = dict(zip(meta["openmlid"], meta["dataset"], strict=True))
    runs = runs[runs["openmlid"].isin(names)].copy()
    runs["dataset"] = runs["openmlid"].map(names)
    runs = runs.rename(columns={"size_train": "anchor"})
    # Timers of LCDB have a resolution of ~1e-4 s; zero times are below it.
    runs["train_time"] = runs["train_time"].clip(lower=1e-4)
    runs = runs[[*RUN_COLUMNS, "openmlid"]]
    extra = [c for c in EXTRA_META if c in meta.columns]
    datasets = meta.dropna(subset=list(META_FEATURES))
    datasets = datasets[["dataset", "openmlid", *META_FEATURES, *extra]].reset_index(drop=True)
    runs_file, meta_file = _files(target, metric)
    runs.to_parquet(runs_file, index=False)
    datasets.to_parquet(meta_file, index=False)
    return target


def _ensure(metric: str, cache: Path | None, progress: bool) -> tuple[Path, Path]:
    folder = cache or cache_dir() / "lcdb"
    runs_file, meta_file = _files(folder, metric)
    if not (runs_file.is_file() and meta_file.is_file()):
        t0 = time.time()
        if progress:
            print(f"building the LCDB cache in {folder} (once) ...", flush=True)
        build_lcdb_cache(metric, folder)
        if progress:
            print(f"  done in {time.time() - t0:.0f} s", flush=True)
    return runs_file, meta_file


def lcdb_runs(
    metric: str = "accuracy", cache: Path | None = None, progress: bool = False
) -> pd.DataFrame:
    """LCDB's whole run table (every data set it names), building the cache on first use.

    Args:
        metric: LCDB metric (``accuracy`` by default).
        cache: Cache folder (default ``cache_dir() / "lcdb"``).
        progress: Print a line while the cache is built.

    Returns:
        Columns :data:`~sciwm.lcdb.runs.RUN_COLUMNS` and ``openmlid``.
    """
    runs_file, _ = _ensure(metric, cache, progress)
    return pd.read_parquet(runs_file)


def load_lcdb(
    metric: str = "accuracy", cache: Path | None = None, progress: bool = False
) -> RunData:
    """LCDB's runs on the data sets with meta-features (~15 s on 2 cores to build the cache).

    Args:
        metric: LCDB metric (``accuracy`` by default).
        cache: Cache folder (default ``cache_dir() / "lcdb"``).
        progress: Print a line while the cache is built.
    """
    runs_file, meta_file = _ensure(metric, cache, progress)
    datasets = pd.read_parquet(meta_file)
    runs = pd.read_parquet(runs_file)
    runs = runs[runs["dataset"].isin(set(datasets["dataset"]))].reset_index(drop=True)
    return RunData(runs, datasets, f"lcdb-{metric}")


def load_slice(path: Path) -> RunData:
    """A slice written by :func:`write_slice` (one parquet file with both tables)."""
    frame = pd.read_parquet(path)
    runs = frame[frame["kind"] == "run"][list(RUN_COLUMNS)].reset_index(drop=True)
    runs["anchor"] = runs["anchor"].astype(int)
    extra = [c for c in EXTRA_META if c in frame.columns]
    ds = frame[frame["kind"] == "dataset"][["dataset", *META_FEATURES, *extra]]
    return RunData(runs, ds.reset_index(drop=True), f"slice:{path.name}")


def write_slice(data: RunData, datasets: list[str], path: Path) -> Path:
    """Write the runs and meta-features of some data sets of ``data`` as one parquet file."""
    part = data.subset(datasets)
    extra = [c for c in EXTRA_META if c in part.datasets.columns]
    runs = part.runs[list(RUN_COLUMNS)].assign(kind="run")
    ds = part.datasets[["dataset", *META_FEATURES, *extra]].assign(kind="dataset")
    pd.concat([runs, ds], ignore_index=True).to_parquet(path, index=False)
    return path


def main(argv: list[str]) -> None:  # pragma: no cover - the command that made the test slice
    """Write the test slice: up to 12 data sets of at most 20,000 training rows (seed 0)."""
    full = load_lcdb(progress=True)
    out = Path(argv[0] if argv else "lcdb_slice.parquet")
    names = full.dataset_names
    pick = [names[i] for i in np.random.default_rng(0).choice(len(names), 16, replace=False)]
    small = [n for n in names if full.runs[full.runs.dataset == n].anchor.max() <= 20000]
    pick = sorted(set(pick) & set(small))[:12] or small[:12]
    write_slice(full, pick, out)
    print(f"wrote {out} with data sets {pick}")


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(sys.argv[1:])


__all__ = [
    "CACHE_VERSION",
    "build_lcdb_cache",
    "cache_dir",
    "lcdb_package_dir",
    "lcdb_runs",
    "load_lcdb",
    "load_slice",
    "write_slice",
]
