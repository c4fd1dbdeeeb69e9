"""The LCDB suite of ``sciwm bench campaign``: every method on every held-out data set and seed.

Held-out data sets (:func:`~sciwm.bench.campaign.lcdb_replay.heldout_problems`): 6 per fold
over 6 folds (36), 3 seeds each; ``--quick``: one data set from each of the first 4 folds, 1
seed. Every method gets the same budget on a data set: the recorded cost of running every
learner once at full size (what exhaustive search pays; it does not depend on which learner
is best, so the budget tells no method where the answer is). One task per data set (every
method and seed on it), in fold order, in a pool of ``workers`` processes with one torch
thread each; a worker pretrains a fold's world model once (the world model memoises it).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sciwm.bench.campaign.lcdb_product import LCDB_PRODUCT, run_lcdb_product
from sciwm.bench.campaign.lcdb_replay import (
    N_FOLDS,
    Fit,
    build_problem,
    fold_training,
    heldout_problems,
    write_fold_slice,
)
from sciwm.bench.campaign.methods import usable_cpus
from sciwm.bench.campaign.peers_mf import LEFT_OUT, PEERS, available, run_peer, training_meta

#: Methods of the LCDB suite, in the order of its table.
LCDB_METHODS = (
    "oracle",
    "random",
    "topk_low_fidelity",
    "hyperband",
    "smac",
    "ax",
    "average_rank",
    "sciwm_no_world_model",
    "sciwm",
    "sciwm_gate",
)
#: Environment variable with a deadline (Unix time, seconds) for the suite: past it, no
#: further data set is started and the rows cover those that finished (the config says so).
DEADLINE_ENV = "SCIWM_BENCH_DEADLINE"
#: Held-out data sets per fold (full run) and in all (``--quick``).
PER_FOLD = 6
QUICK_PROBLEMS = 4


@dataclass(frozen=True)
class LcdbRun:
    """One method on one data set with one seed.

    Attributes:
        problem: ``lcdb:<openml id>``.
        method: Method name.
        seed: Seed.
        cap: The budget.
        oracle_cost: The oracle's cost on the data set.
        best, worst, target: Full-size accuracy of the best and worst learner; the target.
        top: The largest anchor.
        fits: The fits paid for, in order.
        reason: Why the run ended.
        wall_s: Wall time of the run (for the product: of its loop, pretraining excluded).
        figures: The product's recorded figures (empty for peers).
    """

    problem: str
    method: str
    seed: int
    cap: float
    oracle_cost: float
    best: float
    worst: float
    target: float
    top: int
    fits: tuple[Fit, ...]
    reason: str
    wall_s: float
    figures: dict[str, Any]


def _warm_prior(slice_path: Path) -> float:
    """Pretrain the fold's prior in this process as the world model does (memoised there)."""
    from sciwm.lcdb.cache import load_slice
    from surrogates.mlrun.pretrain import PRIOR_HEAD, pretrain_lcdb

    t0 = time.perf_counter()
    pretrain_lcdb("minilm", PRIOR_HEAD, data=load_slice(slice_path))
    return time.perf_counter() - t0


def run_group(task: tuple) -> list[LcdbRun]:
    """Run every ``(problem, method, seed)`` of one fold (a worker's unit of work)."""
    from sciwm.bench.campaign.runner import process_store

    problems, methods, seeds, meta, slice_path, root = task
    torch.set_num_threads(1)
    out: list[LcdbRun] = []
    warm = None
    for problem in problems:
        cap = sum(t for _, t in problem.full().values())
        for method in methods:
            for seed in seeds:
                t0 = time.perf_counter()
                figures: dict[str, Any] = {}
                if method in LCDB_PRODUCT:
                    if LCDB_PRODUCT[method] == "mlrun" and warm is None:
                        warm = _warm_prior(slice_path)
                    run = run_lcdb_product(
                        problem,
                        method,
                        seed,
                        cap,
                        store=process_store(root),
                        root=Path(root) / "labs",
                        pretrain_data=slice_path,
                    )
                    fits, reason, wall = run.fits, run.reason, run.wall_s
                    figures = {**run.figures, "build_s": run.build_s, "pretrain_s": warm}
                else:
                    fits, reason = run_peer(method, problem, seed, cap, meta)
                    wall = time.perf_counter() - t0
                out.append(
                    LcdbRun(
                        problem.name,
                        method,
                        seed,
                        cap,
                        problem.oracle_cost,
                        problem.best,
                        problem.worst,
                        problem.target,
                        problem.top,
                        tuple(fits),
                        reason,
                        wall,
                        figures,
                    )
                )
    return out


def run_lcdb(
    quick: bool = False,
    seeds: int | None = None,
    progress: bool = True,
    *,
    methods: Sequence[str] | None = None,
    workers: int | None = None,
    limit: int | None = None,
    on_progress: Callable[[list[LcdbRun]], None] | None = None,
) -> tuple[list[LcdbRun], dict[str, Any]]:
    """Run the LCDB suite.

    Args:
        quick: 4 data sets, 1 seed.
        seeds: Seeds per data set and method (default 3, ``quick`` 1).
        progress: Print a line per finished run to standard error.
        methods: Methods to run (default :data:`LCDB_METHODS`; those whose library is not
            installed, and ``smac`` (see ``LEFT_OUT``), are left out with a note).
        workers: Worker processes (default: one per usable core).
        limit: Evaluate only the first ``limit`` held-out data sets.
        on_progress: Called with every run finished so far after each data set (the suite
            writes a partial result file with it).

    Returns:
        The runs and the suite's configuration.
    """
    from sciwm.lcdb.cache import load_lcdb

    n_seeds = seeds if seeds is not None else (1 if quick else 3)
    wanted = list(methods or LCDB_METHODS)
    notes = {m: LEFT_OUT[m] for m in wanted if m in LEFT_OUT}
    for m in wanted:
        if m in PEERS and not available(m):
            notes[m] = f"{PEERS[m][1]} is not installed (pip install 'sciwm[bench]')"
    chosen = [m for m in wanted if m not in notes]
    for m, why in notes.items():
        print(f"lcdb: {m} is left out: {why}", file=sys.stderr)
    data = load_lcdb(progress=progress)
    n = limit if limit is not None else (QUICK_PROBLEMS if quick else None)
    problems = heldout_problems(data, 1 if quick else PER_FOLD, n)
    t0 = time.perf_counter()
    runs: list[LcdbRun] = []
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-lcdb-") as root:
        tasks = []
        # one task per data set, the folds taken in turn (so that a run cut at its deadline
        # covers them evenly); a worker pretrains a fold's prior once and keeps it (the world
        # model memoises it per process)
        by_fold = {}
        for fold in sorted({p.fold for p in problems}):
            meta = training_meta([build_problem(data, d, fold) for d in fold_training(data, fold)])
            by_fold[fold] = (meta, write_fold_slice(data, fold, Path(root)))
        rank = {
            p.name: [q.name for q in problems if q.fold == p.fold].index(p.name) for p in problems
        }
        for p in sorted(problems, key=lambda p: (rank[p.name], p.fold)):
            meta, slice_path = by_fold[p.fold]
            tasks.append(([p], chosen, list(range(n_seeds)), meta, slice_path, root))
        n_workers = max(1, min(len(tasks), workers or usable_cpus()))
        total = len(problems) * len(chosen) * n_seeds

        def _done(group: list[LcdbRun]) -> None:
            runs.extend(group)
            if on_progress is not None:
                on_progress(list(runs))
            if progress:
                for r in group:
                    reached = [f.spent for f in r.fits if _hit(r, f)]
                    got = f"{reached[0] / r.oracle_cost:.2f}x oracle" if reached else "not reached"
                    print(
                        f"[{len(runs)}/{total} {time.perf_counter() - t0:6.0f}s] {r.problem:14s} "
                        f"{r.method:21s} seed {r.seed}: {got} ({len(r.fits)} fits, "
                        f"{r.wall_s:.1f}s)",
                        file=sys.stderr,
                        flush=True,
                    )

        deadline = float(os.environ.get(DEADLINE_ENV, "inf"))
        cut = False
        if n_workers > 1:
            with mp.get_context("spawn").Pool(n_workers) as pool:
                for group in pool.imap_unordered(run_group, tasks, chunksize=1):
                    _done(group)
                    if time.time() > deadline and len(runs) < total:
                        cut = True  # leaving the block terminates the workers
                        break
        else:
            threads = torch.get_num_threads()
            try:
                for task in tasks:
                    _done(run_group(task))
                    if time.time() > deadline and len(runs) < total:
                        cut = True
                        break
            finally:
                torch.set_num_threads(threads)
    done = {r.problem for r in runs}
    if cut:
        print(
            f"lcdb: cut at the deadline ({DEADLINE_ENV}) after {len(done)} of "
            f"{len(problems)} data sets",
            file=sys.stderr,
        )
    problems = [p for p in problems if p.name in done]
    config = {
        "datasets": [
            {
                "problem": p.name,
                "dataset": p.dataset,
                "fold": p.fold,
                "top_anchor": p.top,
                "learners": len(p.learners),
                "oracle": p.oracle_learner,
                "oracle_cost": p.oracle_cost,
                "best": p.best,
            }
            for p in problems
        ],
        "folds": N_FOLDS,
        "seeds": n_seeds,
        "methods": chosen,
        "left_out": notes,
        "budget": "recorded cost of every learner once at full size",
        "workers": n_workers,
        "wall_s": time.perf_counter() - t0,
        "cut_at_deadline": cut,
    }
    return runs, config


def _hit(run: LcdbRun, fit: Fit) -> bool:
    return fit.anchor == run.top and not math.isnan(fit.score) and fit.score >= run.target


__all__ = ["LCDB_METHODS", "LcdbRun", "run_group", "run_lcdb"]
