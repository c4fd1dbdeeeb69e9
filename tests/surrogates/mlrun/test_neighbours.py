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


def full_search(b: NeighbourBank, learners, datasets, position) -> np.ndarray:
    """The features by brute force: every run's distance to every query, then the k nearest."""
    m, t = len(learners), b.n_targets
    out = np.tile(np.r_[b.fill, 0.0], (m, 1)).astype(float)
    q = (np.asarray(position, float) - b.mu) / b.sd
    for i in range(m):
        rows = np.flatnonzero((b.learners == learners[i]) & (b.datasets != datasets[i]))
        if len(rows) == 0:
            continue
        d2 = ((b.position[rows] - q[i]) ** 2).sum(-1)
        pick = rows[np.argsort(d2, kind="stable")[: b.k]]
        for j, block in enumerate((b.y, b.relative)):
            out[i, j * t : (j + 1) * t] = np.nanmean(block[pick], 0)
        out[i, 2 * t] = b.rank[pick, 0].mean()
        gain = b.gain[pick]
        out[i, 2 * t + 1] = gain[np.isfinite(gain)].mean() if np.isfinite(gain).any() else 0.0
        out[i, 2 * t + 2] = len(pick) / b.k
    return out


def test_queries_on_one_data_set_get_the_full_searchs_neighbours() -> None:
    # 40 data sets x 3 learners x 12 sizes; one learner ran on only 3 data sets (< k others)
    rng = np.random.default_rng(0)
    metas = rng.normal(size=(40, 4))
    learners, datasets, pos, y = [], [], [], []
    for d in range(40):
        for lr in ("a", "b", "c"):
            if lr == "c" and d > 2:
                continue
            for s in range(12):
                learners.append(lr)
                datasets.append(f"d{d}")
                pos.append([*metas[d], 4 + 0.5 * s])
                y.append([rng.uniform(0.5, 1), rng.normal()])
    y = np.array(y)
    y[::7, 1] = np.nan
    base = np.where(rng.uniform(size=len(y)) < 0.5, y[:, 0] - 0.05, np.nan)
    b = NeighbourBank(learners, datasets, np.array(pos), y, k=5, base=base)
    for asked, meta in (("d3", metas[3]), ("new", rng.normal(size=4))):
        sizes = rng.uniform(3, 11, 60)
        qs = ["a", "b", "c", "zzz"] * 15
        q = np.c_[np.tile(meta, (60, 1)), sizes]
        got = b.features(qs, [asked] * 60, q)
        assert np.allclose(got, full_search(b, qs, [asked] * 60, q), rtol=1e-12, atol=1e-12)
        one = b.features(qs[:1], [asked], q[:1])  # a single query takes the same path
        assert np.allclose(one, got[:1], rtol=1e-12, atol=1e-12)
    # queries on several data sets (the training-time path)
    mixed = [f"d{i % 40}" for i in range(30)]
    q = np.c_[metas[[i % 40 for i in range(30)]], rng.uniform(3, 11, 30)]
    qs = ["a", "b", "c"] * 10
    assert np.allclose(b.features(qs, mixed, q), full_search(b, qs, mixed, q), rtol=1e-12)
