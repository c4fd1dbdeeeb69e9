"""``sciwm bench mlrun_world_model``: the shipped ML-run world model, asked as a campaign asks.

Whole LCDB data sets are held out of pretraining (5 folds, split seed ``100 + seed``, apart
from the splits :mod:`sciwm.bench.mlrun` reports and the ones its settings were chosen on).
For each held-out data set the world model is built exactly as a campaign file builds it —
``[world_model] type = "mlrun"``, ``pretrain = "lcdb"``, ``pretrain_data`` = a slice of the
fold's training data sets, ``dataset`` = the held-out one with its LCDB meta-features as
``dataset_meta``, learner and training size as campaign parameters (the size a fidelity) —
then fitted through ``fit`` on what the campaign would have measured and asked through
``predict`` about every learner at the data set's largest anchor. Settings:

- ``no_curve``: no result yet (``fit([], [])``);
- ``partial_curve``: every learner's learning curve up to :data:`CURVE_FRACTION` of the
  largest anchor (its recorded results at the anchors from ``MIN_ANCHOR`` up to that size),
  as completed campaign results with their recorded train times as cost.

Methods: ``sciwm`` (the world model) and, for ``partial_curve``, ``last_point`` (learners
ranked by their accuracy at the largest anchor of their curve: what a hand-written
successive-halving loop would read). Metrics per data set, then averaged: within-data-set
pairwise accuracy, MAE, and the 90% intervals' coverage and mean width (``sciwm`` only).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sciwm.bench.common import env_info, print_table, write_result
from sciwm.bench.mlrun import _pairwise
from sciwm.experiment import Experiment, Observation, Status
from sciwm.lcdb.cache import load_lcdb, write_slice
from sciwm.lcdb.runs import RunData, final_targets
from sciwm.space import Parameter, SearchSpace
from surrogates.mlrun.model import MLRunWorldModel
from surrogates.mlrun.pretrain import MIN_ANCHOR

#: The partial curve reaches this fraction of the data set's largest anchor.
CURVE_FRACTION = 0.1
PROBLEM = "lcdb_world_model"
NO_CURVE, PARTIAL = "no_curve", "partial_curve"


def world_model(
    slice_path: Path, data: RunData, dataset: str, learners: list[str], top: int, encoder: str
) -> MLRunWorldModel:
    """The world model a campaign on ``dataset`` selects (learner x training size)."""
    space = SearchSpace(
        (
            Parameter("learner", "categorical", choices=tuple(learners)),
            Parameter("train_size", "int", MIN_ANCHOR, top, log=True, fidelity=True),
        )
    )
    return MLRunWorldModel(
        space,
        ["accuracy"],
        pretrain="lcdb",
        encoder=encoder,
        pretrain_data=str(slice_path),
        learner_param="learner",
        anchor_param="train_size",
        dataset=dataset,
        dataset_meta={dataset: data.meta(dataset)},
    )


def curve_results(
    runs: pd.DataFrame, top: int, fraction: float = CURVE_FRACTION
) -> tuple[list[Experiment], list[Observation]]:
    """Every learner's recorded results at anchors from ``MIN_ANCHOR`` to ``fraction x top``."""
    part = runs[(runs["anchor"] >= MIN_ANCHOR) & (runs["anchor"] <= fraction * top)]
    exps, obs = [], []
    for i, r in enumerate(part.itertuples()):
        e = Experiment.create("bench", i, {"learner": r.learner, "train_size": int(r.anchor)})
        exps.append(e)
        obs.append(
            Observation(
                e.id, Status.COMPLETED, {"accuracy": float(r.score)}, max(float(r.train_time), 1e-6)
            )
        )
    return exps, obs


def _scores(y: np.ndarray, mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict[str, float]:
    return {
        "pairwise_accuracy": _pairwise(y, mean),
        "mae": float(np.mean(np.abs(y - mean))),
        "coverage90": float(np.mean((y >= lo) & (y <= hi))),
        "width90": float(np.mean(hi - lo)),
    }


def judge_dataset(
    slice_path: Path, data: RunData, finals: pd.DataFrame, dataset: str, encoder: str
) -> list[dict[str, Any]]:
    """Rows of one held-out data set, both settings."""
    truth = finals[finals["dataset"] == dataset]
    runs = data.runs[data.runs["dataset"] == dataset]
    top = int(truth["anchor"].max())
    learners = sorted(truth["learner"].unique())
    y = truth.set_index("learner").loc[learners, "score"].to_numpy(float)
    asked = [{"learner": lr, "train_size": top} for lr in learners]
    rows = []
    exps, obs = curve_results(runs[runs["learner"].isin(learners)], top)
    for setting, (e, o) in ((NO_CURVE, ([], [])), (PARTIAL, (exps, obs))):
        if setting == PARTIAL and not e:
            continue  # no anchor between MIN_ANCHOR and a tenth of the largest
        model = world_model(slice_path, data, dataset, learners, top, encoder)
        t0 = time.perf_counter()
        model.fit(e, o)
        fit_s = time.perf_counter() - t0
        preds = model.predict(asked)
        est = [p.outcomes["accuracy"] for p in preds]
        mean = np.array([x.mean for x in est])
        lo, hi = np.array([x.lower for x in est]), np.array([x.upper for x in est])
        base = {"problem": PROBLEM, "dataset": dataset, "setting": setting}
        for metric, value in _scores(y, mean, lo, hi).items():
            rows.append({**base, "method": "sciwm", "metric": metric, "value": value})
        rows.append({**base, "method": "sciwm", "metric": "fit_s", "value": fit_s})
        rows.append({**base, "method": "sciwm", "metric": "n_results", "value": float(len(e))})
        if setting == PARTIAL:
            last = (
                pd.DataFrame(
                    {
                        "learner": [x.parameters["learner"] for x in e],
                        "score": [x.outcomes["accuracy"] for x in o],
                        "size": [x.parameters["train_size"] for x in e],
                    }
                )
                .sort_values("size")
                .groupby("learner")["score"]
                .last()
            )
            guess = np.array([last.get(lr, np.nan) for lr in learners])
            guess = np.where(np.isfinite(guess), guess, np.nanmin(guess))
            rows.append(
                {
                    **base,
                    "method": "last_point",
                    "metric": "pairwise_accuracy",
                    "value": _pairwise(y, guess),
                }
            )
    return rows


def run(
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    progress: bool = True,
    encoder: str | None = None,
) -> dict[str, Any]:
    """Run the suite, print its table and write the result file.

    Args:
        quick: One fold of the first split, at most 10 of its data sets, hashing encoder.
        seeds: Number of fold assignments (default 1).
        out: Result JSON file.
        progress: Print progress lines.
        encoder: The world model's encoder (default: MiniLM, the shipped one; hashing when
            ``quick``).
    """
    t_start = time.time()
    encoder = encoder or ("hashing" if quick else "minilm")
    data = load_lcdb(progress=progress)
    finals = final_targets(data)
    counts = finals.groupby("dataset")["learner"].transform("size")
    finals = finals[counts >= 5].reset_index(drop=True)
    names = np.array(sorted(set(finals["dataset"])))
    n_folds, n_seeds = 5, int(seeds or 1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_seeds):
            rng = np.random.default_rng(100 + seed)
            fold_of = dict(
                zip(rng.permutation(names), np.arange(len(names)) % n_folds, strict=True)
            )
            for fold in range(1 if quick else n_folds):
                held = sorted(n for n, f in fold_of.items() if f == fold)
                if quick:
                    held = held[:10]
                train = [n for n in data.dataset_names if fold_of.get(n, -1) != fold]
                slice_path = write_slice(data, train, Path(tmp) / f"s{seed}f{fold}.parquet")
                t0 = time.time()
                for ds in held:
                    for r in judge_dataset(slice_path, data, finals, ds, encoder):
                        rows.append({**r, "seed": seed})
                if progress:
                    print(
                        f"seed {seed} fold {fold + 1}/{n_folds}: {len(held)} held-out data sets, "
                        f"{time.time() - t0:.0f} s",
                        flush=True,
                    )
    config = {
        "quick": quick,
        "seeds": n_seeds,
        "folds": n_folds,
        "encoder": encoder,
        "curve_fraction": CURVE_FRACTION,
        "min_anchor": MIN_ANCHOR,
        "seconds": round(time.time() - t_start, 1),
    }
    result = (
        write_result(out, "mlrun_world_model", rows, config)
        if out
        else {"suite": "mlrun_world_model", "rows": rows, "config": config, "env": env_info()}
    )
    if progress:
        print_table(table_rows(rows))
    return result


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the printed table: per ``setting``, averaged over data sets and seeds."""
    frame = pd.DataFrame(rows)
    frame["problem"] = frame["problem"] + "/" + frame["setting"]
    mean = frame.groupby(["problem", "method", "metric"], sort=False)["value"].mean()
    return [
        {"problem": p, "method": m, "metric": k, "value": float(v)}
        for (p, m, k), v in mean.items()
        if math.isfinite(float(v))
    ]
