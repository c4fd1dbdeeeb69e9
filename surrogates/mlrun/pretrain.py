"""The LCDB prior: the run predictor trained on a run table, as the world model ships it.

:func:`fit_prior` is the one recipe, used by :class:`~surrogates.mlrun.model.MLRunWorldModel`
(through :func:`pretrain_lcdb`, on the whole of LCDB or a slice) and by ``sciwm bench mlrun``
(on each fold's training data sets). It trains on every run at a training size of at least
:data:`MIN_ANCHOR` (targets: the test score and the log train time at that size), with

- the 8 OpenML meta-features and the 10 more of :data:`~sciwm.lcdb.meta.EXTRA_META` as numbers
  (:func:`~sciwm.lcdb.meta.extra_vector`; unknown ones filled with the training data sets'
  medians, :func:`~sciwm.lcdb.meta.extra_fill`, kept in the facts so that a campaign's data
  set is encoded the same way),
- the same learner's results on the :data:`NEIGHBOURS` nearest other training data sets
  stacked onto the inputs (:mod:`surrogates.mlrun.neighbours`),
- a within-group ranking loss next to the Gaussian NLL (:data:`PRIOR_HEAD`),

and holds out a fifth of the data sets (chosen by seed) for split-conformal calibration, so
intervals are calibrated on data sets the model never saw. The calibration is conditioned on
the training size (:class:`~surrogates.mlrun.calibration.SizeCalibrator`: one bin per
doubling of the size, one for runs at their data set's full size), so 90% intervals hold at a
data set's full size, which a campaign asks about most, and at the small sizes below it.
:func:`pretrain_lcdb` caches the result on disk per encoder and configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from sciwm.lcdb.cache import cache_dir, load_lcdb
from sciwm.lcdb.meta import EXTRA_WIDTH, extra_fill, extra_vector
from sciwm.lcdb.runs import RunData
from surrogates.mlrun.calibration import FULL_FRACTION, MIN_BIN_POINTS, SIZE_BIN_WIDTH
from surrogates.mlrun.encoders import TextEncoder, cached_encoder
from surrogates.mlrun.heads import HeadConfig
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.record import RunRecord

TARGETS = ("score", "log_time")
#: Nearest training data sets whose runs of the same learner are stacked onto the inputs.
NEIGHBOURS = 5
#: Smallest training size trained on (LCDB's tiny anchors are noisy).
MIN_ANCHOR = 64
#: Fraction of the data sets held out for calibration.
CALIB_FRACTION = 0.2
#: Heads of the prior: 5 members x 600 steps, ranking loss weight 1; no curve input (a
#: campaign's runs have none).
PRIOR_HEAD = HeadConfig(steps=600, rank_weight=1.0, curve_hidden=0)
#: Version of the recipe (part of the cache key).
RECIPE = "v5"
#: Predictors pretrained in this process on data other than LCDB (LCDB ones live on disk).
_MEMO: dict[str, tuple[dict[str, torch.Tensor], dict]] = {}


def prior_records(
    frame: pd.DataFrame, metas: Mapping[str, Mapping[str, float]], fill: Mapping[str, float]
) -> list[RunRecord]:
    """Run records of a run table's rows as the prior sees them.

    Args:
        frame: Rows of a run table (``dataset, learner, anchor``).
        metas: Meta-features per data set (:meth:`~sciwm.lcdb.runs.RunData.metas`).
        fill: :func:`~sciwm.lcdb.meta.extra_fill` of the prior's training data sets.
    """
    names = frame["dataset"].unique()
    extras = {n: extra_vector(metas[n], fill) for n in names}
    return [
        RunRecord(
            learner=str(r.learner),
            dataset=str(r.dataset),
            meta=metas[r.dataset],
            anchor=float(r.anchor),
            extra=extras[r.dataset],
        )
        for r in frame.itertuples()
    ]


def prior_targets(frame: pd.DataFrame) -> torch.Tensor:
    """A ``n x 2`` tensor of targets ``[score, log train time]`` of a run table's rows."""
    y = np.c_[frame["score"].to_numpy(float), np.log(frame["train_time"].to_numpy(float))]
    return torch.tensor(y, dtype=torch.float32)


def fit_prior(
    data: RunData,
    encoder: TextEncoder,
    config: HeadConfig = PRIOR_HEAD,
    min_anchor: int = MIN_ANCHOR,
    calib_fraction: float = CALIB_FRACTION,
) -> tuple[RunPredictor, dict]:
    """Train the prior on ``data`` (no caching).

    Args:
        data: The run table and its data sets' meta-features.
        encoder: Text encoder (a :class:`~surrogates.mlrun.encoders.CachedEncoder`).
        config: Ensemble settings (its seed also picks the calibration data sets).
        min_anchor: Smallest training size used.
        calib_fraction: Fraction of data sets held out for calibration.

    Returns:
        ``(predictor, facts)``; ``facts`` says what it was trained on and holds the
        ``extra_fill`` to encode other data sets with.
    """
    t0 = time.time()
    names = data.dataset_names
    rng = np.random.default_rng(config.seed)
    n_cal = max(1, int(round(calib_fraction * len(names))))
    cal = set(rng.choice(names, n_cal, replace=False).tolist())
    metas = data.metas()
    fill = extra_fill(metas[n] for n in names if n not in cal)
    runs = data.runs[data.runs["anchor"] >= min_anchor]
    fit_rows = runs[~runs["dataset"].isin(cal)]
    cal_rows = runs[runs["dataset"].isin(cal)]
    predictor = RunPredictor(encoder, TARGETS, config, neighbours=NEIGHBOURS)
    predictor.fit(
        prior_records(fit_rows, metas, fill),
        prior_targets(fit_rows),
        prior_records(cal_rows, metas, fill),
        prior_targets(cal_rows),
    )
    facts = {
        "source": data.source,
        "encoder": encoder.id,
        "n_runs": len(fit_rows),
        "n_datasets": len(names) - n_cal,
        "n_calibration_datasets": n_cal,
        "learners": sorted(data.runs["learner"].unique()),
        "min_anchor": min_anchor,
        "extra_fill": fill,
        "text_dim": int(predictor.stats["text_mean"].numel()),
        "numeric_dim": int(predictor.stats["num_mean"].numel()),
        "seconds": round(time.time() - t0, 1),
    }
    return predictor, facts


def pretrain_lcdb(
    encoder: str = "minilm",
    config: HeadConfig = PRIOR_HEAD,
    progress: bool = False,
    data: RunData | None = None,
) -> tuple[RunPredictor, dict]:
    """:func:`fit_prior` on LCDB (or ``data``), loaded from the cache when it exists.

    Args:
        encoder: Encoder name or model directory.
        config: Ensemble settings.
        progress: Print what is being built.
        data: Run data to train on instead of LCDB (kept in memory for this process only).

    Returns:
        ``(predictor, facts)`` as :func:`fit_prior`.
    """
    key_parts = [
        encoder,
        dataclasses.asdict(config),
        MIN_ANCHOR,
        CALIB_FRACTION,
        NEIGHBOURS,
        [SIZE_BIN_WIDTH, MIN_BIN_POINTS, FULL_FRACTION],
    ]
    key = hashlib.sha1(json.dumps([*key_parts, EXTRA_WIDTH, RECIPE]).encode()).hexdigest()[:12]
    folder = cache_dir() / "mlrun"
    state_file = folder / f"pretrained-{key}.pt"
    facts_file = folder / f"pretrained-{key}.json"
    enc = cached_encoder(encoder)
    memo_key = None if data is None else f"{key}:{data.source}:{len(data.runs)}"
    stored: tuple[dict[str, torch.Tensor], dict] | None = None
    if memo_key is not None:
        stored = _MEMO.get(memo_key)
    elif state_file.is_file() and facts_file.is_file():
        stored = torch.load(state_file, weights_only=True), json.loads(facts_file.read_text())
    if stored is not None:
        state, facts = stored
        predictor = RunPredictor(enc, TARGETS, config, neighbours=NEIGHBOURS)
        predictor.load_state(state, facts["text_dim"], facts["numeric_dim"])
        return predictor, dict(facts)
    data = data or load_lcdb(progress=progress)
    if progress:
        print(f"pretraining the ML-run world model on {data.source} (once) ...", flush=True)
    predictor, facts = fit_prior(data, enc, config)
    if memo_key is not None:
        _MEMO[memo_key] = (predictor.state(), dict(facts))
    else:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(predictor.state(), state_file)
        facts_file.write_text(json.dumps(facts, indent=2))
    if progress:
        print(f"  done in {facts['seconds']:.0f} s", flush=True)
    return predictor, facts


__all__ = [
    "MIN_ANCHOR",
    "NEIGHBOURS",
    "PRIOR_HEAD",
    "fit_prior",
    "pretrain_lcdb",
    "prior_records",
    "prior_targets",
]
