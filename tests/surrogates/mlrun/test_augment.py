"""Rows at smaller anchors and their curve prefixes, on a hand-written run table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surrogates.mlrun.augment import prefix_curves, smaller_anchor_targets


def runs() -> pd.DataFrame:
    # d0: two learners at anchors 10..1000; d1: one learner (too few to rank) at 10..100.
    rows = []
    for learner, base in (("a", 0.5), ("b", 0.6)):
        for i, n in enumerate((10, 20, 100, 200, 1000)):
            rows.append(("d0", learner, n, base + 0.05 * i, 0.1 * n))
    for n in (10, 100):
        rows.append(("d1", "a", n, 0.9, 1.0))
    return pd.DataFrame(rows, columns=["dataset", "learner", "anchor", "score", "train_time"])


def test_rows_below_the_largest_anchor_only() -> None:
    out = smaller_anchor_targets(runs(), ["d0", "d1"], depth=2, min_learners=2)
    # d0's two anchors below 1000 (200, 100) for both learners; d1 has one learner.
    assert sorted(zip(out["learner"], out["anchor"], strict=True)) == [
        ("a", 100),
        ("a", 200),
        ("b", 100),
        ("b", 200),
    ]
    assert smaller_anchor_targets(runs(), ["d1"], depth=2, min_learners=1)["anchor"].tolist() == [
        10
    ]
    assert smaller_anchor_targets(runs(), ["d0"], depth=0).empty


def test_prefixes_end_at_the_fraction_of_each_rows_anchor() -> None:
    table = runs()
    rows = smaller_anchor_targets(table, ["d0"], depth=2, min_learners=2)
    curves = prefix_curves(table, rows, 0.1)
    anchors, scores, times = curves[("d0", "b", 200.0)]
    assert anchors.tolist() == [10.0, 20.0]  # <= 0.1 * 200
    assert np.allclose(scores, [0.6, 0.65]) and np.allclose(times, [1.0, 2.0])
    assert curves[("d0", "a", 100.0)][0].tolist() == [10.0]
