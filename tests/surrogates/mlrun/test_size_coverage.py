"""The run predictor's 90% intervals on held-out synthetic data sets, at a small training size
and at the data sets' full size (where the runs' noise is four times smaller)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciwm.lcdb.meta import META_FEATURES
from surrogates.mlrun.encoders import load_encoder
from surrogates.mlrun.heads import HeadConfig
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.record import RunRecord

LEARNERS = [f"learner{i}" for i in range(10)]
#: Noise std of a run's score below the full size and at it.
NOISE_SMALL, NOISE_FULL = 0.08, 0.02


def runs(seed: int, n_datasets: int) -> tuple[list[RunRecord], torch.Tensor]:
    """Runs of 10 learners on ``n_datasets`` data sets of 4,000-16,000 rows, at sizes 64,
    256, 1024 and at 80% of the instances; score = learner level + 0.03 log2 size + noise."""
    rng = np.random.default_rng(seed)
    level = np.linspace(0.3, 0.6, len(LEARNERS))
    records, y = [], []
    for d in range(n_datasets):
        n = float(rng.integers(4000, 16000))
        meta = dict(zip(META_FEATURES, (n, 20.0, 2.0, 60.0, 40.0, 100.0, 0.0, 0.0), strict=True))
        for anchor in (64.0, 256.0, 1024.0, round(0.8 * n)):
            noise = NOISE_FULL if anchor >= 0.7 * n else NOISE_SMALL
            for i, learner in enumerate(LEARNERS):
                records.append(RunRecord(learner, f"s{seed}d{d}", meta, anchor))
                score = level[i] + 0.03 * math.log2(anchor) + noise * rng.standard_normal()
                y.append([score, math.log(anchor) + 0.1 * rng.standard_normal()])
    return records, torch.tensor(y, dtype=torch.float32)


@pytest.fixture(scope="module")
def trained() -> RunPredictor:
    cfg = HeadConfig(hidden=32, steps=150, n_members=3, batch_size=128, curve_hidden=0)
    pred = RunPredictor(load_encoder("hashing"), ["score", "log_time"], cfg, device="cpu")
    pred.fit(*runs(0, 20), *runs(1, 60))  # calibrated on 60 other data sets
    return pred


def test_intervals_cover_at_small_and_full_size(trained: RunPredictor) -> None:
    records, y = runs(2, 30)
    mean, std, _ = trained.predict(records)
    size, full = trained.record_sizes(records)
    half = trained.interval_halfwidth(0, std[:, 0], 0.9, size, full)
    inside = ((y[:, 0] - mean[:, 0]).abs() <= half).numpy()
    small = (size.numpy() == 6.0) & ~full.numpy()
    assert small.sum() == 300 and full.sum() == 300
    assert 0.84 <= inside[small].mean() <= 0.96
    assert 0.84 <= inside[full.numpy()].mean() <= 0.96
    # the intervals are narrower where the runs are less noisy
    assert float(half[full].mean()) < 0.6 * float(half[torch.from_numpy(small)].mean())


def test_sizes_read_back_from_standardised_inputs(trained: RunPredictor) -> None:
    records, _ = runs(3, 4)
    x = trained.standardise(trained.raw_inputs(records))
    size, full = trained.input_sizes(x)
    want_size, want_full = trained.record_sizes(records)
    assert torch.allclose(size, want_size, atol=1e-4)
    assert torch.equal(full, want_full) and int(full.sum()) == 40
    # predict_standardised scales each run's std by its own bin's scale
    _, var = trained._predict_inputs(x)
    _, std = trained.predict_standardised(x)
    cal = trained.calibrators[0]
    assert torch.allclose(std[:, 0], var[:, 0].sqrt() * cal.scale(size, full).float(), rtol=1e-5)
