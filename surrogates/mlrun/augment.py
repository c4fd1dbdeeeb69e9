"""Training rows at smaller anchors: more groups to rank, more curve -> outcome examples.

The benchmark's target is each learner's score (and train time) at a data set's largest
anchor, so a training data set gives one row per learner. The same data set also shows every
learner at smaller anchors: :func:`smaller_anchor_targets` returns the rows at the ``depth``
next-largest anchors below the largest, and :func:`prefix_curves` the curve each of them had
shown at a fraction of its own anchor, so a row at anchor ``n`` comes with the prefix a run
would show at ``fraction * n``. Only training data sets are ever augmented; the world
model's LCDB prior (:mod:`surrogates.mlrun.pretrain`) likewise trains on every anchor.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from surrogates.mlrun.data import RUN_COLUMNS

Curve = tuple[np.ndarray, np.ndarray, np.ndarray]


def smaller_anchor_targets(
    runs: pd.DataFrame, datasets: Iterable[str], depth: int = 4, min_learners: int = 5
) -> pd.DataFrame:
    """Rows of ``runs`` at the ``depth`` largest anchors below each data set's largest.

    Args:
        runs: A run table (columns :data:`~surrogates.mlrun.data.RUN_COLUMNS`).
        datasets: The data sets to take rows from (training data sets only).
        depth: How many anchors below the largest (0: none).
        min_learners: Anchors with fewer learners are skipped (too few to rank).

    Returns:
        A run table (index reset).
    """
    part = runs[runs["dataset"].isin(set(datasets))]
    rank = part.groupby("dataset")["anchor"].rank(method="dense", ascending=False)
    rows = part[(rank >= 2) & (rank <= 1 + depth)]
    size = rows.groupby(["dataset", "anchor"])["learner"].transform("size")
    return rows[size >= min_learners][list(RUN_COLUMNS)].reset_index(drop=True)


def prefix_curves(
    runs: pd.DataFrame, rows: pd.DataFrame, fraction: float = 0.1
) -> dict[tuple[str, str, float], Curve]:
    """The observed prefix of each row's curve: anchors up to ``fraction`` of its anchor.

    Args:
        runs: The full run table (the curves' source).
        rows: Rows to find prefixes for (e.g. from :func:`smaller_anchor_targets`).
        fraction: Largest observed anchor, as a fraction of the row's anchor.

    Returns:
        ``{(dataset, learner, anchor): (anchors, scores, train_times)}`` (sorted by anchor;
        possibly empty arrays).
    """
    part = runs[runs["dataset"].isin(set(rows["dataset"]))].sort_values("anchor")
    by = {
        (str(d), str(lr)): (
            g["anchor"].to_numpy(float),
            g["score"].to_numpy(float),
            g["train_time"].to_numpy(float),
        )
        for (d, lr), g in part.groupby(["dataset", "learner"], sort=False)
    }
    out: dict[tuple[str, str, float], Curve] = {}
    for r in rows.itertuples():
        curve = by.get((str(r.dataset), str(r.learner)))
        if curve is None:
            continue
        keep = curve[0] <= fraction * float(r.anchor)
        out[(str(r.dataset), str(r.learner), float(r.anchor))] = (
            curve[0][keep],
            curve[1][keep],
            curve[2][keep],
        )
    return out


__all__ = ["prefix_curves", "smaller_anchor_targets"]
