"""``sciwm bench mlrun``: the ML-run world model's LCDB prior on LCDB, leave-data-sets-out.

Whole OpenML data sets are held out (5 folds); the target is the test accuracy and the log
train time of each learner at the data set's largest anchor, predicted from the run's
description alone (learner, data set meta-features, training size). Every method sees the
same folds; the ``sciwm`` rows are also scored (MAE, NLL, 90% coverage) on the held-out data
sets at every smaller training size from ``MIN_ANCHOR`` (setting ``smaller_anchors``).
``sciwm`` is what ``[world_model] type = "mlrun"`` with ``pretrain = "lcdb"``
ships: :func:`surrogates.mlrun.pretrain.fit_prior` with its defaults (the ones
:class:`~surrogates.mlrun.model.MLRunWorldModel` uses), trained on each fold's training data
sets, with the default encoder (MiniLM); ``sciwm_<encoder>`` is the same with the campaign
setting ``encoder = "<encoder>"`` (``sciwm_hashing`` has no language model). The baselines are
those of :mod:`surrogates.mlrun.baselines`. Settings ``landmark_before`` /
``landmark_after_1``: ``sciwm`` on the other learners of each held-out data set before and
after one recorded run of the fold's fastest learner there, taken as a landmark exactly as
the world model takes a completed campaign run (:mod:`surrogates.mlrun.landmarks`).
"""

from __future__ import annotations

import math
import time
from itertools import combinations
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import torch

from sciwm.bench.common import env_info, print_table, write_result
from sciwm.lcdb.cache import load_lcdb
from sciwm.lcdb.meta import EXTRA_META
from sciwm.lcdb.runs import RunData, final_targets
from surrogates.mlrun import baselines
from surrogates.mlrun.encoders import CachedEncoder, load_encoder
from surrogates.mlrun.landmarks import CampaignLandmarks
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.pretrain import (
    MIN_ANCHOR,
    NEIGHBOURS,
    PRIOR_HEAD,
    fit_prior,
    prior_records,
    prior_targets,
)

Z90 = NormalDist().inv_cdf(0.95)
TARGETS = ("final_metric", "cost")
METRICS = ("pairwise_accuracy", "pairwise_clear", "spearman", "mae", "nll", "coverage90")
#: ``pairwise_clear`` only counts pairs whose true values differ by more than this (a point
#: of accuracy): ~20% of LCDB's within-data-set pairs are closer, and their order is noise.
CLEAR_GAP = 0.01
#: What the prediction is made from: the description only (a campaign's run has no curve yet).
SETTING = "no_curve"
#: The same held-out data sets at every training size from ``MIN_ANCHOR`` up to, not
#: including, their largest (what a campaign asks before it trains on all the data).
SMALLER = "smaller_anchors"
#: The other learners of each held-out data set at its largest anchor, before and after one
#: real run of the fold's fastest learner (median train time) there, used as a landmark.
LANDMARK_0, LANDMARK_1 = "landmark_before", "landmark_after_1"


def _pairwise(y: np.ndarray, p: np.ndarray, min_gap: float = 0.0) -> float:
    good = total = 0.0
    for i, j in combinations(range(len(y)), 2):
        dy = y[i] - y[j]
        if dy == 0 or abs(dy) <= min_gap:
            continue
        dp = p[i] - p[j]
        total += 1
        good += 1.0 if dy * dp > 0 else (0.5 if dp == 0 else 0.0)
    return good / total if total else float("nan")


def _spearman(y: np.ndarray, p: np.ndarray) -> float:
    if len(y) < 3 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return float("nan")
    ry = pd.Series(y).rank().to_numpy()
    rp = pd.Series(p).rank().to_numpy()
    return float(np.corrcoef(ry, rp)[0, 1])


def metrics(
    frame: pd.DataFrame, y: np.ndarray, mean: np.ndarray, std: np.ndarray, half: np.ndarray
) -> dict[str, float]:
    """Ranking within data sets (all pairs, and pairs more than :data:`CLEAR_GAP` apart),
    MAE, Gaussian NLL and 90% coverage of one target.

    Args:
        frame: Rows with a ``dataset`` column (``n``).
        y: ``n`` true values; mean, std: ``n`` predictions; half: ``n`` 90% half-widths.
    """
    pair, clear, rho = [], [], []
    for _, idx in frame.groupby("dataset").indices.items():
        pair.append(_pairwise(y[idx], mean[idx]))
        clear.append(_pairwise(y[idx], mean[idx], CLEAR_GAP))
        rho.append(_spearman(y[idx], mean[idx]))
    return {
        "pairwise_accuracy": float(np.nanmean(pair)),
        "pairwise_clear": float(np.nanmean(clear)),
        "spearman": float(np.nanmean(rho)),
        **interval_metrics(y, mean, std, half),
    }


def interval_metrics(
    y: np.ndarray, mean: np.ndarray, std: np.ndarray, half: np.ndarray
) -> dict[str, float]:
    """MAE, Gaussian NLL and 90% coverage of ``n`` predictions (all ``n`` arrays)."""
    s = np.clip(std, 1e-6, None)
    nll = 0.5 * np.log(2 * math.pi * s**2) + 0.5 * ((y - mean) / s) ** 2
    return {
        "mae": float(np.mean(np.abs(y - mean))),
        "nll": float(np.mean(nll)),
        "coverage90": float(np.mean(np.abs(y - mean) <= half)),
    }


def smaller_anchors(data: RunData, datasets: set[str]) -> pd.DataFrame:
    """Runs of ``datasets`` at training sizes from ``MIN_ANCHOR`` up to, not including, each
    data set's largest anchor."""
    runs = data.runs[data.runs["dataset"].isin(datasets)]
    top = runs.groupby("dataset")["anchor"].transform("max")
    return runs[(runs["anchor"] >= MIN_ANCHOR) & (runs["anchor"] < top)].reset_index(drop=True)


def _intervals(
    pred: RunPredictor, frame: pd.DataFrame, metas: dict, facts: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n x 2`` means, stds and 90% half-widths of the prior for a run table's rows."""
    recs = prior_records(frame, metas, facts["extra_fill"])
    mean, std, _ = pred.predict(recs)
    size, full = pred.record_sizes(recs)
    half = torch.stack(
        [pred.interval_halfwidth(j, std[:, j], 0.9, size, full) for j in range(2)], 1
    )
    return mean.numpy(), std.numpy(), half.numpy()


def _landmarked(
    pred: RunPredictor, frame: pd.DataFrame, metas: dict, facts: dict, learner: str
) -> tuple[pd.DataFrame, list[tuple[np.ndarray, ...]]]:
    """The other learners' final-metric answers before and after one landmark run of
    ``learner`` per data set (its recorded result), through the world model's
    :class:`~surrogates.mlrun.landmarks.CampaignLandmarks`.

    Returns:
        ``(others, [(mean, std, half) before, (mean, std, half) after])``, ``n`` arrays each.
    """
    has = frame.groupby("dataset")["learner"].transform(lambda s: (s == learner).any())
    frame = frame[has]
    marks = frame[frame["learner"] == learner].reset_index(drop=True)
    others = frame[frame["learner"] != learner].reset_index(drop=True)
    recs = prior_records(others, metas, facts["extra_fill"])
    mark_recs = prior_records(marks, metas, facts["extra_fill"])
    mean, std, _ = pred.predict(recs)
    m_mean, m_std, _ = pred.predict(mark_recs)
    landmarks = CampaignLandmarks()
    scores = marks["score"].to_numpy(float).tolist()
    landmarks.fit(pred, mark_recs, scores, m_mean[:, 0], m_std[:, 0])
    mean1, std1 = landmarks.apply(pred, recs, mean, std)
    size, full = pred.record_sizes(recs)
    out = []
    for m, s in ((mean, std), (mean1, std1)):
        half = pred.interval_halfwidth(0, s[:, 0], 0.9, size, full)
        out.append((m[:, 0].numpy(), s[:, 0].numpy(), half.numpy()))
    return others, out


def run(
    quick: bool = False, seeds: int | None = None, out: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the suite, print its table and write the result file.

    Args:
        quick: Only the MiniLM and hashing encoders (else SmolLM2 too).
        seeds: Number of fold assignments (default 1).
        out: Result JSON file.
        progress: Print progress lines.
    """
    t_start = time.time()
    encoders = ["minilm", "hashing"] if quick else ["minilm", "smollm2", "hashing"]
    n_folds, n_seeds = 5, int(seeds or 1)
    data = load_lcdb(progress=progress)
    finals = final_targets(data)
    counts = finals.groupby("dataset")["learner"].transform("size")
    finals = finals[counts >= 5].reset_index(drop=True)
    metas = {n: m for n, m in data.metas().items() if n in set(finals["dataset"])}
    y = np.c_[finals["score"].to_numpy(float), np.log(finals["train_time"].to_numpy(float))]
    emb_rate: dict[str, float] = {}
    cached: dict[str, CachedEncoder] = {}
    for name in encoders:
        t0 = time.time()
        raw = load_encoder(name)
        load_s = time.time() - t0
        texts = [f"Data set: {d}; a table of numbers." for d in sorted(metas)]
        t0 = time.time()
        raw.encode(texts)
        emb_rate[name] = len(texts) / max(time.time() - t0, 1e-9)
        cached[name] = CachedEncoder(raw)
        if progress:
            print(f"encoder {name}: loaded in {load_s:.1f} s, {emb_rate[name]:.0f} texts/s")
    rows: list[dict[str, Any]] = []
    speed: dict[str, list[float]] = {"n": [], "predict_s": [], "train_time_s": [], "fit_s": []}
    for seed in range(n_seeds):
        names = np.array(sorted(metas))
        rng = np.random.default_rng(seed)
        fold_of = dict(zip(rng.permutation(names), np.arange(len(names)) % n_folds, strict=True))
        preds: dict[str, list] = {}
        smaller: dict[str, list] = {}
        landmark_parts: list[tuple[pd.DataFrame, list]] = []
        order: list[np.ndarray] = []
        smaller_rows: list[pd.DataFrame] = []
        for fold in range(n_folds):
            test_mask = finals["dataset"].map(fold_of).to_numpy() == fold
            train, test = finals[~test_mask], finals[test_mask]
            order.append(np.flatnonzero(test_mask))
            tf = time.time()

            def add(method: str, mean, std, half=None, preds=preds) -> None:
                half = Z90 * std if half is None else half
                preds.setdefault(method, []).append((mean, std, half))

            m, s = baselines.learner_mean(train, test)
            add("learner_mean", m, s)
            add("knn_datasets", *baselines.knn_datasets(train, test, metas))
            add("gp_meta", *baselines.gp_meta(train, test, metas))
            fold_data = data.subset(set(train["dataset"]))
            below = smaller_anchors(data, set(test["dataset"]))
            smaller_rows.append(below)
            for name in encoders:
                method = "sciwm" if name == "minilm" else f"sciwm_{name}"
                t0 = time.perf_counter()
                pred, facts = fit_prior(fold_data, cached[name], PRIOR_HEAD)
                fit_s = time.perf_counter() - t0
                recs = prior_records(test, metas, facts["extra_fill"])
                t0 = time.perf_counter()
                mean, std, _ = pred.predict(recs)
                dt = time.perf_counter() - t0
                if method == "sciwm":
                    speed["n"].append(len(recs))
                    speed["predict_s"].append(dt)
                    speed["train_time_s"].append(float(test["train_time"].sum()))
                    speed["fit_s"].append(fit_s)
                size, full = pred.record_sizes(recs)
                half = torch.stack(
                    [pred.interval_halfwidth(j, std[:, j], 0.9, size, full) for j in range(2)], 1
                )
                add(method, mean.numpy(), std.numpy(), half.numpy())
                smaller.setdefault(method, []).append(_intervals(pred, below, metas, facts))
                if method == "sciwm":  # one landmark run of the fastest learner
                    fast = fold_data.runs.groupby("learner")["train_time"].median().idxmin()
                    landmark_parts.append(_landmarked(pred, test, metas, facts, fast))
            if progress:
                print(
                    f"seed {seed} fold {fold + 1}/{n_folds}: {test['dataset'].nunique()} held-out "
                    f"data sets, {time.time() - tf:.0f} s",
                    flush=True,
                )
        idx = np.concatenate(order)
        frame = finals.iloc[idx].reset_index(drop=True)
        for method, parts in preds.items():
            mean, std, half = (np.concatenate([p[k] for p in parts]) for k in range(3))
            for j, target in enumerate(TARGETS):
                vals = metrics(frame, y[idx, j], mean[:, j], std[:, j], half[:, j])
                for metric, value in vals.items():
                    rows.append(
                        {
                            "problem": "lcdb_leave_datasets_out",
                            "method": method,
                            "metric": metric,
                            "value": value,
                            "target": target,
                            "setting": SETTING,
                            "seed": seed,
                        }
                    )
        below = pd.concat(smaller_rows, ignore_index=True)
        y_below = prior_targets(below).numpy()
        for method, parts in smaller.items():
            mean, std, half = (np.concatenate([p[k] for p in parts]) for k in range(3))
            for j, target in enumerate(TARGETS):
                vals = interval_metrics(y_below[:, j], mean[:, j], std[:, j], half[:, j])
                for metric in vals:
                    rows.append(
                        {
                            "problem": "lcdb_leave_datasets_out",
                            "method": method,
                            "metric": metric,
                            "value": vals[metric],
                            "target": target,
                            "setting": SMALLER,
                            "seed": seed,
                        }
                    )
        lm_frame = pd.concat([f for f, _ in landmark_parts], ignore_index=True)
        y_lm = lm_frame["score"].to_numpy(float)
        for k, setting in enumerate((LANDMARK_0, LANDMARK_1)):
            mean, std, half = (
                np.concatenate([parts[k][j] for _, parts in landmark_parts]) for j in range(3)
            )
            vals = metrics(lm_frame, y_lm, mean, std, half)
            for metric, value in vals.items():
                rows.append(
                    {
                        "problem": "lcdb_leave_datasets_out",
                        "method": "sciwm",
                        "metric": metric,
                        "value": value,
                        "target": "final_metric",
                        "setting": setting,
                        "seed": seed,
                    }
                )
    # Throughput: a batch of held-out rows through the trained predictor, embeddings cached.
    n, t = sum(speed["n"]), sum(speed["predict_s"])
    base = {"problem": "lcdb_leave_datasets_out", "method": "sciwm", "setting": SETTING}
    rows.append({**base, "metric": "predictions_per_s", "value": n / t})
    rows.append({**base, "metric": "time_compression", "value": sum(speed["train_time_s"]) / t})
    rows.append({**base, "metric": "pretrain_s", "value": float(np.mean(speed["fit_s"]))})
    for name, rate in emb_rate.items():
        method = "sciwm" if name == "minilm" else f"sciwm_{name}"
        rows.append({**base, "method": method, "metric": "embeddings_per_s", "value": rate})
    config_out = {
        "quick": quick,
        "folds": n_folds,
        "seeds": n_seeds,
        "encoders": encoders,
        "head": PRIOR_HEAD.to_dict(),
        "neighbours": NEIGHBOURS,
        "min_anchor": MIN_ANCHOR,
        "n_datasets": len(metas),
        "n_runs": len(finals),
        "n_training_runs": int((data.runs["anchor"] >= MIN_ANCHOR).sum()),
        "extra_meta": list(EXTRA_META),
        "seconds": round(time.time() - t_start, 1),
    }
    result = (
        write_result(out, "mlrun", rows, config_out)
        if out
        else {"suite": "mlrun", "rows": rows, "config": config_out, "env": env_info()}
    )
    if progress:
        print_table(table_rows(rows))
    return result


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the printed table: ``problem`` = ``target/setting``, averaged over seeds."""
    frame = pd.DataFrame(rows)
    frame["target"] = frame.get("target", pd.Series(dtype=str)).fillna("speed")
    frame["setting"] = frame["setting"].fillna("-")
    frame["problem"] = frame["target"] + "/" + frame["setting"]
    mean = frame.groupby(["problem", "method", "metric"], sort=False)["value"].mean()
    return [
        {"problem": p, "method": m, "metric": k, "value": float(v)} for (p, m, k), v in mean.items()
    ]
