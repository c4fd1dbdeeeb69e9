"""Nearest-data-set stacking features: values recomputed by hand on a four-data-set table."""

from __future__ import annotations

import numpy as np

from sciwm.lcdb.meta import META_FEATURES as META
from surrogates.mlrun.neighbours import NeighbourBank


def bank(k: int = 2) -> NeighbourBank:
    # Two learners on four data sets placed on a line (position = [meta, log2 size]).
    learners = ["a", "b"] * 4
    datasets = ["d0", "d0", "d1", "d1", "d2", "d2", "d3", "d3"]
    pos = np.array([[x, 10.0] for x in (0, 0, 1, 1, 2, 2, 10, 10)], float)
    score = np.array([0.9, 0.7, 0.8, 0.6, 0.5, 0.7, 0.2, 0.1])
    y = np.c_[score, np.log1p(np.arange(8.0))]
    base = np.array([0.85, 0.6, np.nan, np.nan, 0.4, 0.6, np.nan, np.nan])
    return NeighbourBank(learners, datasets, pos, y, k=k, base=base)


def test_features_match_a_hand_computation() -> None:
    b = bank()
    f = b.features(["a", "b"], ["new", "d1"], np.array([[0.4, 10.0], [1.0, 10.0]]))
    assert f.shape == (2, b.width) == (2, 7)
    # "a" near 0.4: its runs on d0 (0.9) and d1 (0.8).
    assert np.isclose(f[0, 0], 0.85)
    # relative to each data set's mean: d0 (0.9 - 0.8), d1 (0.8 - 0.7)
    assert np.isclose(f[0, 2], 0.1)
    assert np.isclose(f[0, 4], 1.0)  # "a" beat "b" on both
    assert np.isclose(f[0, 5], 0.9 - 0.85)  # gain known on d0 only
    assert np.isclose(f[0, 6], 1.0)
    # "b" on d1 leaves d1 out: its nearest are d0 (0.7) and d2 (0.7)
    assert np.isclose(f[1, 0], 0.7)
    assert np.isclose(f[1, 2], np.mean([0.7 - 0.8, 0.7 - 0.6]))
    assert np.isclose(f[1, 4], 0.5)


def test_unknown_learner_gets_the_fill_and_state_round_trips() -> None:
    b = bank()
    f = b.features(["zzz"], ["new"], np.array([[0.0, 10.0]]))
    assert np.isclose(f[0, 0], b.y[:, 0].mean()) and f[0, -1] == 0.0
    again = NeighbourBank.from_state(b.state())
    q = np.array([[0.4, 10.0], [3.0, 9.0]])
    assert np.allclose(
        again.features(["a", "b"], ["x", "y"], q), b.features(["a", "b"], ["x", "y"], q)
    )


def test_predictor_with_neighbours_round_trips_through_its_state() -> None:
    import torch

    from surrogates.mlrun.encoders import load_encoder
    from surrogates.mlrun.heads import HeadConfig
    from surrogates.mlrun.predictor import RunPredictor
    from surrogates.mlrun.record import RunRecord

    rng = np.random.default_rng(0)
    metas = {
        f"d{i}": {k: float(v) for k, v in zip(META, rng.uniform(1, 90, len(META)), strict=True)}
        for i in range(6)
    }
    recs = [RunRecord(lr, d, metas[d], 100.0) for d in metas for lr in ("svc", "tree", "knn")]
    y = torch.tensor(rng.uniform(0.5, 1.0, (len(recs), 2)), dtype=torch.float32)
    cfg = HeadConfig(hidden=8, steps=20, n_members=2, batch_size=8, rank_weight=1.0, group_rows=4)
    pred = RunPredictor(load_encoder("hashing"), ["score", "log_time"], cfg, neighbours=2)
    pred.fit(recs, y)
    assert pred.numeric_features(recs).shape[1] == 1 + len(META) + pred.bank.width
    again = RunPredictor(load_encoder("hashing"), ["score", "log_time"], cfg)
    state = pred.state()
    again.load_state(
        state, int(state["stats.text_mean"].numel()), int(state["stats.num_mean"].numel())
    )
    assert again.neighbours == 2
    assert torch.allclose(again.predict(recs)[0], pred.predict(recs)[0])
