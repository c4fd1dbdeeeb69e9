"""Entry point of the campaign benchmark: run every method on every problem and seed, report."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from sciwm.bench.campaign.baselines import (
    optuna_available,
    run_gp_cost_blind,
    run_optuna_tpe,
    run_random,
)
from sciwm.bench.campaign.methods import (
    METHODS,
    PRODUCT_METHODS,
    RunResult,
    Settings,
    usable_cpus,
)
from sciwm.bench.campaign.product import SIMULATED_LAB, TimedStore, campaign_file, run_product
from sciwm.bench.campaign.report import TABLE_METRICS, cell, summarize, target_check
from sciwm.bench.common import env_info, format_table, make_result, save_result
from sciwm.registry import load_object
from sciwm.testing.problems import PROBLEMS, Problem

SUITE = "campaign"

#: The simple loops, by method name (the product's methods run through :func:`run_task`).
RUNNERS: dict[str, Callable[[Problem, int, float, Settings], RunResult]] = {
    "gp_cost_blind": run_gp_cost_blind,
    "optuna_tpe": run_optuna_tpe,
    "random": run_random,
}

Task = tuple[Problem, str, int, float, Settings, str]

#: Suites of real-data campaigns, by the problem group that selects them (``problems`` of
#: :func:`run`, ``--problems`` of ``sciwm bench campaign``): each is called as
#: ``suite(quick, seeds, progress, out)``, prints its own table and returns
#: ``(rows, config)``.
EXTRA_SUITES: dict[str, str] = {
    "lcdb": "sciwm.bench.campaign.real_report:lcdb_suite",
    "md": "sciwm.bench.campaign.md_campaign:md_suite",
    "scale": "sciwm.bench.campaign.scale:scale_suite",
    "warm_start": "sciwm.bench.campaign.warm_start:warm_start_suite",
    "mo": "sciwm.bench.campaign.mo_report:mo_suite",
    "loop": "sciwm.bench.campaign.loop_speed:loop_suite",
}

#: One record store per process and benchmark run, by the run's directory: opening a new
#: SQLite MLflow store costs seconds, so the campaigns of one process share it.
_STORES: dict[str, TimedStore] = {}


def process_store(root: str | Path) -> TimedStore:
    """This process's record store under ``root`` (opened on first use)."""
    key = str(root)
    if key not in _STORES:
        folder = Path(root) / f"store-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        _STORES[key] = TimedStore(f"sqlite:///{folder / 'mlflow.db'}")
    return _STORES[key]


def run_task(task: Task) -> RunResult:
    """Run ``(problem, method, seed, cap, settings, root)`` with one torch thread.

    The product's methods record their campaign in this process's store under ``root``.
    """
    problem, method, seed, cap, settings, root = task
    torch.set_num_threads(1)
    if method in PRODUCT_METHODS:
        store = process_store(root)
        return run_product(
            problem, seed, cap, settings, method=method, store=store, root=Path(root) / "labs"
        )
    return RUNNERS[method](problem, seed, cap, settings)


def run(
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    progress: bool = True,
    *,
    problems: Sequence[str] | None = None,
    caps: dict[str, float] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the campaign benchmark and print its table.

    Args:
        quick: 3 seeds and smaller caps (a few minutes on 2 cores).
        seeds: Seeds per problem and method (default 10, or 3 with ``quick``).
        out: Where to write the result JSON (optional).
        progress: Print one line per finished run to standard error.
        problems: Problem names to run (default: all).
        caps: Budget cap per problem name, overriding the defaults.
        settings: Optimiser and method settings (default :class:`Settings`).

    Returns:
        The result dict ``{"suite", "rows", "config", "env"}``.
    """
    s = settings or Settings()
    s = replace(s, quick=quick, seeds=seeds if seeds is not None else (3 if quick else s.seeds))
    if "optuna_tpe" in s.methods and not optuna_available():
        print(
            "optuna is not installed: the optuna_tpe baseline is left out "
            "(pip install 'sciwm[bench]' to run it)",
            file=sys.stderr,
        )
        s = replace(s, methods=tuple(m for m in s.methods if m != "optuna_tpe"))
    chosen = [p for p in PROBLEMS if problems is None or p.name in problems]
    extra = [g for g in EXTRA_SUITES if problems is None or g in problems]
    if not chosen and not extra:
        known = [p.name for p in PROBLEMS] + list(EXTRA_SUITES)
        raise ValueError(f"no such problem(s) {problems}; choose from {known}")
    cap_of = {p.name: (p.cap_quick if quick else p.cap) for p in chosen}
    cap_of.update(caps or {})
    # Longest runs first so that the parallel workers finish together.
    factor = {"random": s.random_cap_factor}
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-campaign-") as root:
        tasks: list[Task] = [
            (p, m, seed, cap_of[p.name] * factor.get(m, 1.0), s, root)
            for m in (*PRODUCT_METHODS, "gp_cost_blind", "optuna_tpe", "random")
            if m in s.methods
            for p in sorted(chosen, key=lambda p: -p.dim)
            for seed in range(s.seed_offset, s.seed_offset + s.seeds)
        ]
        results, wall, workers, threads = _run_tasks(tasks, s, progress)
        _STORES.pop(root, None)
    rows = summarize(results, chosen)
    rows += target_check(rows, chosen)
    config = {
        **asdict(s),
        "problems": [
            {**asdict(p), "cap_used": cap_of[p.name], "target": p.target()} for p in chosen
        ],
        "methods": list(s.methods),
        "cost": "cost(u) = 10 ** ((u_1 + u_d) / 2), u in the unit cube; spans 1..10",
        "target": "f <= f* + 0.01 * (f_max - f*)",
        "connector": SIMULATED_LAB,
        "campaign_file_example": campaign_file(
            chosen[0],
            s.seed_offset,
            cap_of[chosen[0].name],
            scheduler=s.scheduler,
            max_experiments=s.max_experiments,
        )
        if chosen
        else None,
        "wall_s_total": wall,
    }
    for group in extra:
        suite = load_object(EXTRA_SUITES[group], what="campaign benchmark suite")
        more, config[group] = suite(quick, seeds, progress, out)
        rows += more
    env = env_info()
    env["torch_threads"] = 1 if workers > 1 else threads
    env["workers"] = workers
    result = make_result(SUITE, rows, config, env)
    if progress:
        print(file=sys.stderr)
    if chosen:
        print(
            format_table(
                [r for r in result["rows"] if r["metric"] in TABLE_METRICS and not _extra(r)],
                TABLE_METRICS,
                METHODS,
                cell=cell,
            )
        )
    for r in result["rows"]:
        if r["metric"] == "target_met" and not _extra(r):
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']} on {r['problem']}: {word}")
    if chosen:
        print(f"total wall time {wall:.0f} s with {workers} worker(s)")
    if out is not None:
        save_result(out, result)
    return result


def _extra(row: dict[str, Any]) -> bool:
    """Whether a row belongs to a suite of :data:`EXTRA_SUITES` (``lcdb``, ``lcdb:<id>``)."""
    return str(row["problem"]).split(":")[0] in EXTRA_SUITES


def _run_tasks(
    tasks: Sequence[Task], s: Settings, progress: bool
) -> tuple[list[RunResult], float, int, int]:
    """Run the tasks (in a pool of ``s.workers`` processes); results, wall, workers, threads."""
    t0 = time.perf_counter()
    results: list[RunResult] = []
    workers = max(1, s.workers if s.workers is not None else usable_cpus())

    def _done(r: RunResult) -> None:
        results.append(r)
        if progress:
            got = f"{r.cost_to_target:.1f}" if math.isfinite(r.cost_to_target) else "not reached"
            print(
                f"[{len(results)}/{len(tasks)} {time.perf_counter() - t0:6.0f}s] "
                f"{r.problem:10s} {r.method:14s} seed {r.seed:2d}: cost_to_target {got} "
                f"({r.experiments} experiments, {r.wall_s:.1f}s)",
                file=sys.stderr,
                flush=True,
            )

    threads = torch.get_num_threads()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for r in pool.imap_unordered(run_task, tasks):
                _done(r)
    else:
        try:
            for task in tasks:
                _done(run_task(task))
        finally:
            torch.set_num_threads(threads)
    return results, time.perf_counter() - t0, workers, threads
