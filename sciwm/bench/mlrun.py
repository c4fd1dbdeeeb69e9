"""``sciwm bench mlrun``: the ML-run world model on LCDB, leave-data-sets-out.

Whole OpenML data sets are held out (5 folds); the target is the test accuracy and the log
train time of each learner at the data set's largest anchor. Every method sees the same
folds. Settings: ``no_curve`` (description only) and ``partial_curve`` (plus the observed
curve at anchors up to 10% of the largest). Methods: ``sciwm`` (the LM predictor with the
default encoder, MiniLM), ``sciwm_<encoder>`` (other encoders; ``sciwm_hashing`` has no
language model), and the baselines of :mod:`surrogates.mlrun.baselines`. The LM predictor
is configured as the world model's LCDB prior: a within-data-set ranking loss next to the
Gaussian NLL, and the same learner's results on the nearest training data sets stacked onto
its inputs (:mod:`surrogates.mlrun.neighbours`). It is trained on the training data sets'
rows at the largest anchor and at the :data:`AUGMENT_DEPTH` anchors below it (each with the
curve prefix it had at 10% of its own anchor, :mod:`surrogates.mlrun.augment`), and gets ten
more OpenML meta-features of each data set as extra numbers
(:mod:`surrogates.mlrun.openml_meta`).
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
from surrogates.mlrun import baselines
from surrogates.mlrun.augment import prefix_curves, smaller_anchor_targets
from surrogates.mlrun.data import final_targets, load_lcdb, partial_curves
from surrogates.mlrun.encoders import CachedEncoder, load_encoder
from surrogates.mlrun.heads import HeadConfig
from surrogates.mlrun.mapping import PRETRAIN_RANK_WEIGHT as RANK_WEIGHT
from surrogates.mlrun.openml_meta import EXTRA_META, extra_meta_vectors
from surrogates.mlrun.predictor import RunPredictor, RunRecord
from surrogates.mlrun.pretrain import NEIGHBOURS

Z90 = NormalDist().inv_cdf(0.95)
TARGETS = ("final_metric", "cost")
METRICS = ("pairwise_accuracy", "pairwise_clear", "spearman", "mae", "nll", "coverage90")
#: ``pairwise_clear`` only counts pairs whose true values differ by more than this (a point
#: of accuracy): ~20% of LCDB's within-data-set pairs are closer, and their order is noise.
CLEAR_GAP = 0.01
#: The LM predictor also trains on this many anchors below each training data set's largest.
AUGMENT_DEPTH = 4


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
    s = np.clip(std, 1e-6, None)
    nll = 0.5 * np.log(2 * math.pi * s**2) + 0.5 * ((y - mean) / s) ** 2
    return {
        "pairwise_accuracy": float(np.nanmean(pair)),
        "pairwise_clear": float(np.nanmean(clear)),
        "spearman": float(np.nanmean(rho)),
        "mae": float(np.mean(np.abs(y - mean))),
        "nll": float(np.mean(nll)),
        "coverage90": float(np.mean(np.abs(y - mean) <= half)),
    }


def _records(
    frame: pd.DataFrame,
    metas: dict,
    curves: dict | None,
    extra: dict[str, tuple[float, ...]] | None = None,
    by_anchor: bool = False,
) -> list[RunRecord]:
    """Records of ``frame``'s rows; ``curves`` keyed by ``(dataset, learner)``, or by
    ``(dataset, learner, anchor)`` with ``by_anchor``; ``extra``: numbers per data set."""
    out = []
    for r in frame.itertuples():
        key = (r.dataset, r.learner, float(r.anchor)) if by_anchor else (r.dataset, r.learner)
        c = None if curves is None else curves.get(key)
        if c is not None and len(c[0]) == 0:
            c = None
        more = () if extra is None else extra[r.dataset]
        out.append(
            RunRecord(r.learner, r.dataset, metas[r.dataset], float(r.anchor), extra=more, curve=c)
        )
    return out


def run(
    quick: bool = False, seeds: int | None = None, out: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the suite, print its table and write the result file.

    Args:
        quick: Fewer optimiser steps (400, else 600) and only MiniLM and hashing encoders.
        seeds: Number of fold assignments (default 1).
        out: Result JSON file.
        progress: Print progress lines.
    """
    t_start = time.time()
    encoders = ["minilm", "hashing"] if quick else ["minilm", "smollm2", "hashing"]
    config = HeadConfig(steps=400 if quick else 600, n_members=5, rank_weight=RANK_WEIGHT)
    n_folds, n_seeds = 5, int(seeds or 1)
    data = load_lcdb(progress=progress)
    finals = final_targets(data)
    counts = finals.groupby("dataset")["learner"].transform("size")
    finals = finals[counts >= 5].reset_index(drop=True)
    curves = partial_curves(data, 0.1)
    metas = {n: data.meta(n) for n in finals["dataset"].unique()}
    y = np.c_[finals["score"].to_numpy(float), np.log(finals["train_time"].to_numpy(float))]
    ids = dict(zip(data.datasets["dataset"], data.datasets["openmlid"], strict=True))
    extra = extra_meta_vectors({n: int(ids[n]) for n in metas})
    aug = smaller_anchor_targets(data.runs, metas, AUGMENT_DEPTH)
    aug_curves = prefix_curves(data.runs, aug, 0.1)
    y_aug = np.c_[aug["score"].to_numpy(float), np.log(aug["train_time"].to_numpy(float))]
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
    speed: dict[str, list[float]] = {"n": [], "predict_s": [], "train_time_s": []}
    for seed in range(n_seeds):
        names = np.array(sorted(metas))
        rng = np.random.default_rng(seed)
        fold_of = dict(zip(rng.permutation(names), np.arange(len(names)) % n_folds, strict=True))
        preds: dict[tuple[str, str], list] = {}
        order: list[np.ndarray] = []
        for fold in range(n_folds):
            test_mask = finals["dataset"].map(fold_of).to_numpy() == fold
            train, test = finals[~test_mask], finals[test_mask]
            order.append(np.flatnonzero(test_mask))
            tf = time.time()

            def add(method: str, setting: str, mean, std, half=None, preds=preds) -> None:
                half = Z90 * std if half is None else half
                preds.setdefault((method, setting), []).append((mean, std, half))

            m, s = baselines.learner_mean(train, test)
            add("learner_mean", "no_curve", m, s)
            add("knn_datasets", "no_curve", *baselines.knn_datasets(train, test, metas))
            add("gp_meta", "no_curve", *baselines.gp_meta(train, test, metas))
            add(
                "last_observed",
                "partial_curve",
                *baselines.curve_baseline(train, test, curves, "last"),
            )
            add(
                "power_law",
                "partial_curve",
                *baselines.curve_baseline(train, test, curves, "power_law"),
            )
            train_names = np.array(sorted(train["dataset"].unique()))
            cal = set(rng.choice(train_names, len(train_names) // 5, replace=False))
            fit_rows = train[~train["dataset"].isin(cal)]
            cal_rows = train[train["dataset"].isin(cal)]
            more = aug["dataset"].isin(set(fit_rows["dataset"])).to_numpy()
            for name in encoders:
                method = "sciwm" if name == "minilm" else f"sciwm_{name}"
                for setting, cv in (("no_curve", None), ("partial_curve", curves)):
                    pred = RunPredictor(
                        cached[name], ["score", "log_time"], config, neighbours=NEIGHBOURS
                    )
                    ytr = torch.tensor(np.r_[y[fit_rows.index], y_aug[more]], dtype=torch.float32)
                    ycal = torch.tensor(y[cal_rows.index], dtype=torch.float32)
                    acv = None if cv is None else aug_curves
                    recs = _records(fit_rows, metas, cv, extra)
                    recs += _records(aug[more], metas, acv, extra, by_anchor=True)
                    pred.fit(recs, ytr, _records(cal_rows, metas, cv, extra), ycal)
                    recs = _records(test, metas, cv, extra)
                    t0 = time.perf_counter()
                    mean, std, _ = pred.predict(recs)
                    dt = time.perf_counter() - t0
                    if method == "sciwm" and setting == "no_curve":
                        speed["n"].append(len(recs))
                        speed["predict_s"].append(dt)
                        speed["train_time_s"].append(float(test["train_time"].sum()))
                    half = torch.stack(
                        [pred.interval_halfwidth(j, std[:, j], 0.9) for j in range(2)], 1
                    )
                    add(method, setting, mean.numpy(), std.numpy(), half.numpy())
            if progress:
                print(
                    f"seed {seed} fold {fold + 1}/{n_folds}: {test['dataset'].nunique()} held-out "
                    f"data sets, {time.time() - tf:.0f} s",
                    flush=True,
                )
        idx = np.concatenate(order)
        frame = finals.iloc[idx].reset_index(drop=True)
        for (method, setting), parts in preds.items():
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
                            "setting": setting,
                            "seed": seed,
                        }
                    )
    # Throughput: a batch of held-out rows through the trained predictor, embeddings cached.
    n, t = sum(speed["n"]), sum(speed["predict_s"])
    base = {"problem": "lcdb_leave_datasets_out", "method": "sciwm", "setting": "no_curve"}
    rows.append({**base, "metric": "predictions_per_s", "value": n / t})
    rows.append({**base, "metric": "time_compression", "value": sum(speed["train_time_s"]) / t})
    for name, rate in emb_rate.items():
        method = "sciwm" if name == "minilm" else f"sciwm_{name}"
        rows.append({**base, "method": method, "metric": "embeddings_per_s", "value": rate})
    config_out = {
        "quick": quick,
        "folds": n_folds,
        "seeds": n_seeds,
        "encoders": encoders,
        "head": config.to_dict(),
        "n_datasets": len(metas),
        "n_runs": len(finals),
        "curve_fraction": 0.1,
        "augment_depth": AUGMENT_DEPTH,
        "n_augmented_runs": len(aug),
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
