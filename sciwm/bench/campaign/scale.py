"""Scale: how long the product takes to propose a batch of 8 once a campaign has n results.

For each ``n`` in :data:`SIZES` and each seed, a Hartmann6 campaign file for the simulated lab
(:func:`~sciwm.bench.campaign.product.campaign_file`, ``batch_size = parallelism = 8``) is
built into the loop behind ``sciwm campaign run`` (:class:`flows.loop.CampaignLoop`); its
history is ``n`` finished experiments at uniform random points, evaluated on the problem
with the problem's cost surface (as if the campaign had run them: writing 10,000 MLflow runs
would only measure the store). The loop then fits its world model (:meth:`CampaignLoop.fit`,
logged to the store as in a campaign) and proposes one batch of 8
(:meth:`CampaignLoop.propose`, the agent the file selects, every setting at its default but
``restart_after = 0``: a random history has long stalls, so the agent would otherwise restart
its search and propose from a fresh design or a model of the last epoch's results only).

Methods: ``sciwm`` (the shipped ``gp`` world model: exact up to ``scalable_above`` results,
a subset GP past it) and ``sciwm_exact`` (the same file with ``scalable_above = 0``: always
exact), run where it finishes in reasonable time (``n <= EXACT_MAX``).

Rows (``problem = "scale:hartmann6"``, qualified by ``n_observations`` and ``seed``):
``proposal_latency_s`` (the batch of 8, wall time; ``proposal_cpu_s`` its CPU time, which
on a busy machine says what an idle one would take), ``fit_s`` / ``fit_cpu_s`` (the
world-model fit), ``peak_memory_mb``
(the process's peak resident memory: every case runs in a fresh process), and
``batch_regret`` (the best true value in the batch minus the optimum; the history's own best
is in ``history_regret``). Targets (2 CPU cores): latency <= 2 s at 1,000 results and <= 10
s at 10,000, and ``batch_regret`` of ``sciwm`` no worse than ``sciwm_exact``'s where both run.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sciwm.bench.common import Row

#: Result counts measured (``--quick``: the first two).
SIZES = (100, 1000, 3000, 10000)
#: Largest history the always-exact GP runs on.
EXACT_MAX = 1000
#: Batch size proposed.
BATCH = 8
#: Methods and the ``[world_model.settings]`` their campaign file adds.
SCALE_METHODS: dict[str, dict[str, Any]] = {"sciwm": {}, "sciwm_exact": {"scalable_above": 0}}
PROBLEM = "hartmann6"
#: The rows' ``problem`` (the ``scale`` group of ``--problems``).
ROW_PROBLEM = f"scale:{PROBLEM}"
#: Hartmann6's global minimum.
OPTIMUM = -3.32237


def campaign_text(seed: int, settings: dict[str, Any]) -> str:
    """The campaign file of one case: Hartmann6, batches of 8, the given GP settings."""
    from sciwm.bench.campaign.product import campaign_file
    from sciwm.testing.problems import problem_named

    text = campaign_file(
        problem_named(PROBLEM),
        seed,
        1e12,
        scheduler={"batch_size": BATCH, "parallelism": BATCH, "restart_after": 0},
        max_experiments=100_000,
    )
    if settings:
        pairs = ", ".join(f"{k} = {v!r}" for k, v in settings.items())
        text = text.replace('type = "gp"\n', f'type = "gp"\nsettings = {{ {pairs} }}\n')
    return text.replace("\ntarget = ", "\n# target = ")  # a history must not end the campaign


def run_case(case: tuple[str, int, int]) -> dict[str, Any]:
    """One ``(method, n, seed)`` case in this (fresh) process; its figures."""
    from flows.loop import CampaignLoop
    from sciwm.experiment import Experiment, Observation, Status
    from sciwm.spec import parse_spec
    from sciwm.store import Record, RecordStore
    from sciwm.testing.problems import cost_of, problem_named, to_native

    method, n, seed = case
    torch.set_num_threads(1)
    problem = problem_named(PROBLEM)
    text = campaign_text(seed, SCALE_METHODS[method])
    spec = parse_spec(tomllib.loads(text), f"<scale {method} n={n}>")
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-scale-") as root:
        store = RecordStore(f"sqlite:///{Path(root) / 'mlflow.db'}")
        loop = CampaignLoop(spec, text, store, Path(root) / "lab")
        space, fn = loop.space, problem.make()
        gen = torch.Generator().manual_seed(10_000 + seed)
        U = space.round_trip(torch.rand(n, space.dim, generator=gen, dtype=torch.double))
        values = fn(to_native(fn, U)).tolist()
        costs = cost_of(U).tolist()
        for i, (params, v, c) in enumerate(zip(space.decode(U), values, costs, strict=True)):
            exp = Experiment.create(spec.name, i, params)
            obs = Observation(exp.id, Status.COMPLETED, {"f": v}, cost=c)
            loop.state.finished.append(Record(exp, Status.COMPLETED, "", observation=obs))
        loop.state.next_seq = n
        loop.state.refit_needed = True
        t0, c0 = time.perf_counter(), time.process_time()
        loop.fit()
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        batch = loop.propose(BATCH)
        latency, cpu = time.perf_counter() - t0, time.process_time() - c0
        loop.connector.close()
    X = space.encode([c.parameters for c in batch])
    batch_best = float(fn(to_native(fn, X)).min())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    extra = loop.model.summary.extra if loop.model.summary else {}
    return {
        "method": method,
        "n": n,
        "seed": seed,
        "proposal_latency_s": latency,
        "proposal_cpu_s": cpu,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "peak_memory_mb": peak,
        "batch_regret": batch_best - OPTIMUM,
        "history_regret": min(values) - OPTIMUM,
        "subset": bool(extra.get("subset")),
    }


def cases(quick: bool, seeds: int) -> list[tuple[str, int, int]]:
    """Every ``(method, n, seed)`` the suite runs, largest first."""
    sizes = SIZES[:2] if quick else SIZES
    out = [
        (m, n, s)
        for n in sizes
        for m in SCALE_METHODS
        if m == "sciwm" or n <= EXACT_MAX
        for s in range(seeds)
    ]
    return sorted(out, key=lambda c: -c[1])


def rows_of(results: Sequence[dict[str, Any]]) -> list[Row]:
    """Tidy rows: each case's figures, then medians per method and ``n``, then the targets."""
    metrics = (
        "proposal_latency_s",
        "proposal_cpu_s",
        "fit_s",
        "fit_cpu_s",
        "peak_memory_mb",
        "batch_regret",
        "history_regret",
    )
    rows: list[Row] = []
    for r in results:
        for metric in metrics:
            rows.append(
                {
                    "problem": ROW_PROBLEM,
                    "method": r["method"],
                    "metric": f"{metric}_run",
                    "value": r[metric],
                    "n_observations": r["n"],
                    "seed": r["seed"],
                    "subset": r["subset"],
                }
            )
    groups = sorted({(r["method"], r["n"]) for r in results})
    median: dict[tuple[str, int, str], float] = {}
    for method, n in groups:
        mine = [r for r in results if r["method"] == method and r["n"] == n]
        for metric in metrics:
            value = statistics.median(r[metric] for r in mine)
            median[(method, n, metric)] = value
            rows.append(
                {
                    "problem": ROW_PROBLEM,
                    "method": method,
                    "metric": metric,
                    "value": value,
                    "n_observations": n,
                    "seeds": len(mine),
                }
            )
    for n, limit in ((1000, 2.0), (10000, 10.0)):
        got = median.get(("sciwm", n, "proposal_latency_s"))
        if got is not None:
            rows.append(_target(f"latency_at_{n}_le_{limit:g}s", got <= limit, f"{got:.2f} s"))
    for n in sorted({n for _, n in groups}):
        a, b = (
            median.get(("sciwm", n, "batch_regret")),
            median.get(("sciwm_exact", n, "batch_regret")),
        )
        if a is not None and b is not None:
            ok = a <= b + 1e-9
            rows.append(_target(f"regret_at_{n}_vs_exact", ok, f"{a:.4f} vs {b:.4f}"))
    return rows


def _target(criterion: str, ok: bool, measured: str) -> Row:
    return {
        "problem": ROW_PROBLEM,
        "method": "sciwm",
        "metric": "target_met",
        "value": int(ok),
        "criterion": criterion,
        "measured": measured,
    }


def scale_suite(
    quick: bool, seeds: int | None, progress: bool, out: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Run the scale suite (each case in a fresh process), print its table and targets."""
    n_seeds = seeds if seeds is not None else (1 if quick else 2)
    todo = cases(quick, n_seeds)
    results = []
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:  # one case at a time: latency, not throughput
        for r in pool.imap(run_case, todo):
            results.append(r)
            if progress:
                print(
                    f"[scale {len(results)}/{len(todo)} {time.perf_counter() - t0:6.0f}s] "
                    f"{r['method']:12s} n={r['n']:6d} seed {r['seed']}: propose "
                    f"{r['proposal_latency_s']:.2f} s ({r['proposal_cpu_s']:.2f} s CPU), fit "
                    f"{r['fit_s']:.2f} s, peak "
                    f"{r['peak_memory_mb']:.0f} MB, batch regret {r['batch_regret']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
    rows = rows_of(results)
    print("\nScale: a batch of 8 after n results (Hartmann6; medians over seeds, 1 thread):")
    print(table(rows))
    for r in rows:
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']}: {word} ({r['measured']})")
    config = {
        "sizes": list(SIZES[:2] if quick else SIZES),
        "seeds": n_seeds,
        "batch": BATCH,
        "methods": SCALE_METHODS,
        "exact_max": EXACT_MAX,
        "campaign_file_example": campaign_text(0, {}),
        "wall_s": time.perf_counter() - t0,
    }
    return rows, config


def table(rows: Sequence[Row]) -> str:
    """The medians as a text table: one line per method and ``n``."""
    cols = (
        "proposal_latency_s",
        "proposal_cpu_s",
        "fit_s",
        "peak_memory_mb",
        "batch_regret",
    )
    keyed = {
        (r["method"], r["n_observations"], r["metric"]): r["value"] for r in rows if "seeds" in r
    }
    keys = sorted({(m, n) for m, n, _ in keyed}, key=lambda k: (k[1], k[0]))
    lines = ["method        n_obs  " + "  ".join(f"{c:>18s}" for c in cols)]
    for m, n in keys:
        vals = "  ".join(f"{keyed.get((m, n, c), float('nan')):18.3f}" for c in cols)
        lines.append(f"{m:12s} {n:6d}  {vals}")
    return "\n".join(lines)


__all__ = ["SCALE_METHODS", "SIZES", "campaign_text", "cases", "rows_of", "run_case", "scale_suite"]
