"""Run tables: LCDB's learning curves and users' own run logs, in one tidy form.

A *run table* is a pandas frame with one row per (data set, learner, training size):

========== =====================================================================
column     meaning
========== =====================================================================
dataset    data set name (str)
learner    learner name (str), e.g. ``RandomForestClassifier`` or a dotted class path
anchor     training-set size (int > 0); the learning curve's x axis
score      test score at that size (accuracy for LCDB), mean over seeds
train_time measured training time in seconds (> 0), mean over seeds
========== =====================================================================

and a *data-set table* with one row per data set: ``dataset``, the 8
:data:`~sciwm.lcdb.meta.META_FEATURES` and any of the :data:`~sciwm.lcdb.meta.EXTRA_META`
(NaN where unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from sciwm.lcdb import RunDataError
from sciwm.lcdb.meta import EXTRA_META, META_FEATURES, check_meta

RUN_COLUMNS: tuple[str, ...] = ("dataset", "learner", "anchor", "score", "train_time")


@dataclass(frozen=True)
class RunData:
    """Learning curves and the data sets they were measured on.

    Attributes:
        runs: The run table (columns :data:`RUN_COLUMNS`, possibly more).
        datasets: The data-set table.
        source: Where the data came from (for messages and training summaries).
    """

    runs: pd.DataFrame
    datasets: pd.DataFrame
    source: str

    def __post_init__(self) -> None:
        check_runs(self.runs, self.source)
        missing = [c for c in ("dataset", *META_FEATURES) if c not in self.datasets.columns]
        if missing:
            raise RunDataError(
                f"{self.source}: the data-set table lacks meta-feature column(s) {missing}; "
                "compute them with sciwm.lcdb.meta.meta_features(X, y)"
            )
        unknown = sorted(set(self.runs["dataset"]) - set(self.datasets["dataset"]))
        if unknown:
            raise RunDataError(
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

    def metas(self) -> dict[str, dict[str, float]]:
        """Per data set: its :data:`META_FEATURES` and the :data:`EXTRA_META` it has."""
        return dict(self._metas)

    def meta(self, dataset: str) -> dict[str, float]:
        """Meta-features of one data set (as in :meth:`metas`).

        Raises:
            RunDataError: If the data set is not in the data-set table.
        """
        if dataset not in self._metas:
            raise RunDataError(f"no meta-features for data set {dataset!r} in {self.source}")
        return dict(self._metas[dataset])

    @cached_property
    def _metas(self) -> dict[str, dict[str, float]]:
        extra = [c for c in EXTRA_META if c in self.datasets.columns]
        cols = ("dataset", *META_FEATURES, *extra)
        out = {}
        for row in self.datasets[list(cols)].itertuples(index=False):
            values = dict(zip(cols, row, strict=True))
            name = str(values.pop("dataset"))
            out[name] = {k: float(v) for k, v in values.items() if not pd.isna(v)}
        return out


def check_runs(runs: pd.DataFrame, source: str) -> None:
    """Validate a run table.

    Raises:
        RunDataError: On missing columns, NaN or infinite scores/times, non-positive sizes.
    """
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise RunDataError(
            f"{source}: run log lacks column(s) {missing}; it needs {list(RUN_COLUMNS)}"
        )
    for col in ("score", "train_time", "anchor"):
        values = pd.to_numeric(runs[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RunDataError(
                f"{source}: {int(bad.sum())} row(s) have a NaN, infinite or non-numeric "
                f"{col!r} (first at row {i}: {runs[col].iloc[i]!r}); drop or fix them"
            )
        if col in ("train_time", "anchor") and (values <= 0).any():
            raise RunDataError(f"{source}: {col!r} must be positive in every row")


def dataset_table(datasets: pd.DataFrame | Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Normalise ``{name: meta}`` or a frame into a data-set table, checking every feature.

    Raises:
        RunDataError: For a data set that lacks one of the 8 meta-features or has a value
            that is not a finite number.
    """
    if isinstance(datasets, pd.DataFrame):
        return datasets
    rows = [{"dataset": str(name), **check_meta(str(name), m)} for name, m in datasets.items()]
    extra = [c for c in EXTRA_META if any(c in r for r in rows)]
    return pd.DataFrame(rows, columns=["dataset", *META_FEATURES, *extra])


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
        raise RunDataError(f"run log {path} does not exist")
    return RunData(pd.read_csv(path), dataset_table(datasets), str(path))


def final_targets(data: RunData) -> pd.DataFrame:
    """Per (data set, learner): score and train time at the data set's largest anchor.

    Learners that did not reach the data set's largest anchor are left out (as in LCDB's own
    analyses). Columns: :data:`RUN_COLUMNS`.
    """
    runs = data.runs
    top = runs.groupby("dataset")["anchor"].transform("max")
    return runs[runs["anchor"] == top][list(RUN_COLUMNS)].reset_index(drop=True)


__all__ = [
    "RUN_COLUMNS",
    "RunData",
    "check_runs",
    "dataset_table",
    "final_targets",
    "load_runs_csv",
]
