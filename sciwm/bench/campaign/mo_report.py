"""The multi-objective suite's entry point, rows, table and plot (see :mod:`.multiobjective`)."""

from __future__ import annotations

import importlib.util
import math
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sciwm.bench.campaign.mo_problems import MOBenchProblem, mo_problems
from sciwm.bench.campaign.multiobjective import (
    BUDGET_FRACTIONS,
    HV_SHARE,
    MAX_EXPERIMENTS,
    MAX_EXPERIMENTS_QUICK,
    MO_METHODS,
    N_LCDB,
    N_LCDB_QUICK,
    NEEDS,
    MORun,
    run_one,
)
from sciwm.bench.campaign.report import _quantile
from sciwm.bench.common import Row, format_table

#: Metrics of the printed table.
MO_TABLE = (
    "cost_to_hv95",
    "cost_to_hv95_q25",
    "cost_to_hv95_q75",
    "reached_fraction",
    "ratio_to_sciwm",
    "hv_at_25pct",
    "hv_at_100pct",
    "wall_s_per_run",
)


def summarize_mo(runs: Sequence[MORun], problems: Sequence[MOBenchProblem]) -> list[Row]:
    """Tidy rows: per problem x method medians, quartiles, reached fraction, ratios, targets."""
    rows: list[Row] = []
    for problem in problems:
        medians: dict[str, float] = {}
        caps: dict[str, float] = {}
        for method in MO_METHODS:
            mine = sorted((r for r in runs if r.problem == problem.name and r.method == method),
                          key=lambda r: r.seed)  # fmt: skip
            if not mine:
                continue
            cap = max(r.cap for r in mine)
            caps[method] = cap
            costs = [r.cost_to_hv(problem) for r in mine]
            reached = sum(math.isfinite(c) for c in costs)
            base = {"problem": problem.name, "method": method}
            qual = {"seeds": len(mine), "reached": reached, "cap": cap}
            medians[method] = _quantile(costs, 0.5)
            for metric, q in (("cost_to_hv95", 0.5), ("cost_to_hv95_q25", 0.25),
                              ("cost_to_hv95_q75", 0.75)):  # fmt: skip
                v = _quantile(costs, q)
                rows.append({**base, "metric": metric, "value": None if math.isinf(v) else v,
                             **qual, "censored": math.isinf(v)})  # fmt: skip
            rows.append(
                {**base, "metric": "reached_fraction", "value": reached / len(mine), **qual}
            )
            for frac in BUDGET_FRACTIONS:
                hv = _quantile([r.hv_at(problem, frac * cap) for r in mine], 0.5)
                rows.append({**base, "metric": "hv_at_budget", "value": hv, "budget_fraction": frac,
                             "budget": frac * cap, "seeds": len(mine)})  # fmt: skip
            n_exp = _quantile([float(len(r.costs)) for r in mine], 0.5)
            rows.append(
                {**base, "metric": "experiments_per_run", "value": n_exp, "seeds": len(mine)}
            )
            wall = sum(r.wall_s for r in mine) / len(mine)
            rows.append({**base, "metric": "wall_s_per_run", "value": wall, "seeds": len(mine)})
            for r, c in zip(mine, costs, strict=True):
                rows.append({**base, "metric": "cost_to_hv95_run",
                             "value": None if math.isinf(c) else c, "seed": r.seed, "cap": r.cap,
                             "experiments": len(r.costs), "spent": sum(r.costs),
                             "hv_final": r.hv_at(problem, r.cap), "wall_s": r.wall_s})  # fmt: skip
        rows += _ratios(problem.name, medians, caps)
    return rows


def _ratios(problem: str, medians: dict[str, float], caps: dict[str, float]) -> list[Row]:
    """``ratio_to_sciwm`` per peer and the ``below_every_peer`` target row."""
    ref = medians.get("sciwm")
    rows: list[Row] = []
    if ref is None:
        return rows
    ok = True
    for method, other in medians.items():
        if method == "sciwm":
            continue
        if math.isfinite(ref) and math.isfinite(other):
            ratio, bound = other / ref, "exact"
        elif math.isfinite(ref):
            ratio, bound = caps[method] / ref, "lower"
        elif math.isfinite(other):
            ratio, bound = other / caps["sciwm"], "upper"
        else:
            ratio, bound = math.nan, "none"
        ok = ok and bound in ("exact", "lower") and ratio > 1.0
        rows.append({"problem": problem, "method": method, "metric": "ratio_to_sciwm",
                     "value": None if math.isnan(ratio) else ratio, "bound": bound})  # fmt: skip
    rows.append({"problem": problem, "method": "sciwm", "metric": "target_met", "value": int(ok),
                 "criterion": "below_every_peer"})  # fmt: skip
    return rows


def mo_cell(row: Row) -> str:
    """A row's value as printed in the table."""
    v = row["value"]
    m = row["metric"]
    if m.startswith("cost_to_hv95"):
        return f">{row['cap']:.3g}" if v is None else f"{v:.3g}"
    if m == "ratio_to_sciwm":
        if v is None:
            return "-"
        return {"lower": ">=", "upper": "<=", "exact": ""}.get(row["bound"], "") + f"{v:.2f}"
    if m in ("reached_fraction", "hv_at_25pct", "hv_at_100pct"):
        return f"{v:.2f}"
    if m == "wall_s_per_run":
        return f"{v:.1f}"
    return str(v)


def table(rows: Sequence[Row]) -> str:
    """The printed table: ``hv_at_budget`` at 25% and 100% of the budget as columns."""
    shown = []
    for r in rows:
        if r["metric"] == "hv_at_budget" and r["budget_fraction"] in (0.25, 1.0):
            tag = "25pct" if r["budget_fraction"] == 0.25 else "100pct"
            shown.append({**r, "metric": f"hv_at_{tag}"})
        elif r["metric"] in MO_TABLE:
            shown.append(r)
    return format_table(shown, MO_TABLE, MO_METHODS, cell=mo_cell)


def plot_hv(runs: Sequence[MORun], problems: Sequence[MOBenchProblem], path: Path) -> Path:
    """Median hypervolume fraction against the budget fraction, one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [i / 40 for i in range(1, 41)]
    fig, axes = plt.subplots(1, len(problems), figsize=(4.5 * len(problems), 3.8), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        for method in MO_METHODS:
            mine = [r for r in runs if r.problem == problem.name and r.method == method]
            if mine:
                ys = [_quantile([r.hv_at(problem, g * r.cap) for r in mine], 0.5) for g in grid]
                ax.plot(grid, ys, label=method, lw=2 if method == "sciwm" else 1)
        ax.axhline(HV_SHARE, color="grey", ls="--", lw=1)
        ax.set_title(problem.name)
        ax.set_xlabel("fraction of the budget spent")
        ax.set_ylabel("hypervolume / best known (median)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def available_methods(methods: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The methods whose library is installed, and a note for each left out."""
    notes = {
        m: f"{NEEDS[m]} is not installed (pip install 'sciwm[bench]')"
        for m in methods
        if m in NEEDS and importlib.util.find_spec(NEEDS[m]) is None
    }
    return [m for m in methods if m not in notes], notes


def run_mo(
    quick: bool = False,
    seeds: int | None = None,
    progress: bool = True,
    *,
    methods: Sequence[str] = MO_METHODS,
    n_lcdb: int | None = None,
    workers: int | None = None,
    seed_offset: int = 0,
    max_experiments: int | None = None,
) -> tuple[list[MORun], list[MOBenchProblem], dict[str, Any]]:
    """Run every method on every problem and seed (in a pool of worker processes)."""
    from sciwm.bench.campaign.methods import usable_cpus

    n_seeds = seeds if seeds is not None else (2 if quick else 3)
    chosen, notes = available_methods(methods)
    for m, why in notes.items():
        print(f"mo: {m} is left out: {why}", file=sys.stderr)
    problems = mo_problems(n_lcdb if n_lcdb is not None else (N_LCDB_QUICK if quick else N_LCDB))
    n_max = max_experiments or (MAX_EXPERIMENTS_QUICK if quick else MAX_EXPERIMENTS)
    t0 = time.perf_counter()
    runs: list[MORun] = []
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-mo-") as root:
        tasks = [
            (p, m, seed, p.cap_quick if quick else p.cap, n_max, root)
            for m in chosen
            for p in problems
            for seed in range(seed_offset, seed_offset + n_seeds)
        ]
        n_workers = max(1, min(len(tasks), workers or usable_cpus()))

        def _done(r: MORun) -> None:
            runs.append(r)
            if progress:
                c = r.cost_to_hv(next(p for p in problems if p.name == r.problem))
                got = f"{c:.3g}" if math.isfinite(c) else "not reached"
                print(f"[{len(runs)}/{len(tasks)} {time.perf_counter() - t0:6.0f}s] {r.problem} "
                      f"{r.method} seed {r.seed}: cost_to_hv95 {got} ({len(r.costs)} experiments, "
                      f"{r.wall_s:.1f}s)", file=sys.stderr, flush=True)  # fmt: skip

        if n_workers > 1:
            with mp.get_context("spawn").Pool(n_workers) as pool:
                for r in pool.imap_unordered(run_one, tasks):
                    _done(r)
        else:
            for task in tasks:
                _done(run_one(task))
    config = {
        "methods": chosen,
        "left_out": notes,
        "seeds": list(range(seed_offset, seed_offset + n_seeds)),
        "max_experiments": n_max,
        "problems": [
            {
                "name": p.name,
                "dataset": p.dataset or None,
                "objectives": list(p.objectives),
                "maximize": list(p.maximize),
                "ref": list(p.ref),
                "best_hv": p.best_hv,
                "cap": p.cap_quick if quick else p.cap,
                "unit": p.unit,
            }
            for p in problems
        ],  # fmt: skip
        "campaign_file_example": problems[0].campaign_file(
            "mo-branin_currin-sciwm-0",
            0,
            problems[0].cap_quick if quick else problems[0].cap,
            n_max,
        ),
        "workers": n_workers,
        "wall_s": time.perf_counter() - t0,
    }
    return runs, problems, config


def mo_suite(
    quick: bool, seeds: int | None, progress: bool, out: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """The suite hook of ``sciwm bench campaign``: run, print the table and targets, plot."""
    runs, problems, config = run_mo(quick, seeds, progress)
    rows = summarize_mo(runs, problems)
    print("\nMulti-objective campaigns (medians over seeds; cost to 95% of the best known "
          "hypervolume, hypervolume fraction at 25% and 100% of the budget):")  # fmt: skip
    print(table(rows))
    for r in rows:
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']} on {r['problem']}: {word}")
    if out is not None:
        png = Path(out).with_name(Path(out).stem + "_mo_hypervolume.png")
        config["plot"] = str(plot_hv(runs, problems, png))
    return rows, config
