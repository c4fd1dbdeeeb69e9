"""Pretraining the run predictor on LCDB, cached on disk per encoder and configuration.

The pretrained predictor sees every LCDB data set at every anchor at or above
``min_anchor`` (targets: test accuracy and log train time at that anchor). A fifth of the
data sets (chosen by seed) is held out for split-conformal calibration, so intervals are
calibrated on data sets the model never saw.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict

import numpy as np
import torch

from surrogates.mlrun.data import RunData, cache_dir, load_lcdb
from surrogates.mlrun.encoders import cached_encoder
from surrogates.mlrun.heads import HeadConfig
from surrogates.mlrun.predictor import RunPredictor, RunRecord

TARGETS = ("score", "log_time")
#: Nearest training data sets whose runs of the same learner are stacked onto the inputs.
NEIGHBOURS = 5
#: Predictors pretrained in this process on data other than LCDB (LCDB ones live on disk).
_MEMO: dict[str, tuple[dict[str, torch.Tensor], dict]] = {}


def records_and_targets(
    data: RunData, rows: object | None = None, curves: dict | None = None
) -> tuple[list[RunRecord], torch.Tensor]:
    """Run records and ``n x 2`` targets ``[score, log train time]`` of a run table.

    Args:
        data: The data (for meta-features).
        rows: A subset of ``data.runs`` (default: all).
        curves: ``{(dataset, learner): (anchors, scores, times)}`` to attach as partial curves.
    """
    frame = data.runs if rows is None else rows
    metas = {n: data.meta(n) for n in frame["dataset"].unique()}  # type: ignore[index]
    records = [
        RunRecord(
            learner=r.learner,
            dataset=r.dataset,
            meta=metas[r.dataset],
            anchor=float(r.anchor),
            curve=None if curves is None else _nonempty(curves.get((r.dataset, r.learner))),
        )
        for r in frame.itertuples()  # type: ignore[attr-defined]
    ]
    y = np.c_[frame["score"].to_numpy(float), np.log(frame["train_time"].to_numpy(float))]  # type: ignore[index]
    return records, torch.tensor(y, dtype=torch.float32)


def _nonempty(curve: tuple | None) -> tuple | None:
    if curve is None or len(curve[0]) == 0:
        return None
    return curve


def pretrain_lcdb(
    encoder: str = "minilm",
    config: HeadConfig | None = None,
    min_anchor: int = 64,
    calib_fraction: float = 0.2,
    progress: bool = False,
    data: RunData | None = None,
) -> tuple[RunPredictor, dict]:
    """A run predictor trained on LCDB (loaded from the cache when it exists).

    Args:
        encoder: Encoder name or model directory.
        config: Ensemble settings.
        min_anchor: Smallest training size used (tiny anchors are noisy).
        calib_fraction: Fraction of data sets held out for calibration.
        progress: Print what is being built.
        data: Run data to train on instead of LCDB (tests pass a slice).

    Returns:
        ``(predictor, facts)`` where ``facts`` says what it was trained on.
    """
    config = config or HeadConfig()
    key = hashlib.sha1(
        json.dumps([encoder, asdict(config), min_anchor, calib_fraction, NEIGHBOURS, "v3"]).encode()
    ).hexdigest()[:12]
    folder = cache_dir() / "mlrun"
    state_file = folder / f"pretrained-{key}.pt"
    facts_file = folder / f"pretrained-{key}.json"
    enc = cached_encoder(encoder)
    predictor = RunPredictor(enc, TARGETS, config, neighbours=NEIGHBOURS)
    memo_key = None if data is None else f"{key}:{data.source}:{len(data.runs)}"
    if memo_key in _MEMO:
        state, facts = _MEMO[memo_key]
        predictor.load_state(state, facts["text_dim"], facts["numeric_dim"])
        return predictor, dict(facts)
    if data is None and state_file.is_file() and facts_file.is_file():
        facts = json.loads(facts_file.read_text())
        predictor.load_state(
            torch.load(state_file, weights_only=True), facts["text_dim"], facts["numeric_dim"]
        )
        return predictor, facts
    t0 = time.time()
    data = data or load_lcdb(progress=progress)
    if progress:
        print(f"pretraining the ML-run world model on {data.source} (once) ...", flush=True)
    names = data.dataset_names
    rng = np.random.default_rng(config.seed)
    n_cal = max(1, int(round(calib_fraction * len(names))))
    cal = set(rng.choice(names, n_cal, replace=False).tolist())
    runs = data.runs[data.runs["anchor"] >= min_anchor]
    fit_rows = runs[~runs["dataset"].isin(cal)]
    cal_rows = runs[runs["dataset"].isin(cal)]
    records, y = records_and_targets(data, fit_rows)
    cal_records, cal_y = records_and_targets(data, cal_rows)
    predictor.fit(records, y, cal_records, cal_y)
    facts = {
        "source": data.source,
        "encoder": enc.id,
        "n_runs": len(records),
        "n_datasets": len(names) - n_cal,
        "n_calibration_datasets": n_cal,
        "learners": sorted(data.runs["learner"].unique()),
        "min_anchor": min_anchor,
        "text_dim": int(predictor.stats["text_mean"].numel()),
        "numeric_dim": int(predictor.stats["num_mean"].numel()),
        "seconds": round(time.time() - t0, 1),
    }
    if memo_key is not None:
        _MEMO[memo_key] = (predictor.state(), dict(facts))
    else:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(predictor.state(), state_file)
        facts_file.write_text(json.dumps(facts, indent=2))
    if progress:
        print(f"  done in {facts['seconds']:.0f} s", flush=True)
    return predictor, facts
