"""Warm start: does an earlier campaign on a related LCDB data set make a new one cheaper?

Pairs: each *target* data set is the first eligible one of a fold
(:func:`~sciwm.bench.campaign.lcdb_replay.heldout_problems`, the LCDB suite's dealt order;
nothing about warm starts chose them). Its *related* source is the eligible data set nearest
to it by OpenML meta-features, its *unrelated* source the farthest (:func:`meta_distance`:
Euclidean distance of the 8 :data:`~sciwm.lcdb.meta.META_FEATURES`, counts on a log scale,
each standardised over the eligible data sets).

Campaigns (all through :class:`flows.loop.CampaignLoop`, the loop of ``sciwm campaign run``,
with the LCDB suite's campaign file for the ``gp`` world model,
:func:`~sciwm.bench.campaign.lcdb_product.lcdb_campaign_file`: learner x training size, the
replay connector, the shipped ``[scheduler]`` defaults but ``virtual = false``: with virtual
answers on, the cold campaigns stopped after about 5 results, before reaching the target):

- *last month's campaign* on the source: that file on the source data set, run to its budget
  (the recorded cost of every learner once at full size) or its 60 experiments;
- ``cold`` on the target: the same file on the target, ended once a full-size result is within
  1% accuracy of the best learner's (the LCDB suite's target);
- ``warm``: the same file plus ``[warm_start] campaigns = ["<the source's campaign>"]``.

``cost_to_target`` is the recorded train time spent until the target is reached (``inf``:
not within the budget); ``warm_start_ratio`` is cold's over warm's per target, source kind
(``pair`` = ``related`` / ``unrelated``) and seed (one seed unless ``--seeds`` says more).
Targets: median ratio >= 2 on related pairs, >= 1 / 1.1 on unrelated ones (at most 10%
dearer).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciwm.bench.common import Row

#: Target data sets (one per fold) in the full run and with ``--quick``.
TARGETS, QUICK_TARGETS = 6, 2
METHOD = "sciwm_no_world_model"  # the LCDB suite's campaign file with the gp world model


def meta_distance(metas: dict[str, dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Names and the ``k x k`` matrix of meta-feature distances between data sets."""
    from sciwm.lcdb.meta import LOG_META, META_FEATURES

    names = sorted(metas)
    M = np.array(
        [
            [math.log(metas[n][k]) if k in LOG_META else float(metas[n][k]) for k in META_FEATURES]
            for n in names
        ]
    )
    M = (M - M.mean(0)) / np.where(M.std(0) > 0, M.std(0), 1.0)
    return names, np.sqrt(((M[:, None, :] - M[None, :, :]) ** 2).sum(-1))


def pairs(quick: bool) -> list[tuple[Any, Any, Any]]:
    """``(target, related source, unrelated source)`` problems."""
    from sciwm.bench.campaign.lcdb_replay import build_problem, eligible, heldout_problems
    from sciwm.lcdb.cache import load_lcdb

    data = load_lcdb(progress=False)
    targets = heldout_problems(data, 1, QUICK_TARGETS if quick else TARGETS)
    pool = {}
    for name in data.dataset_names:
        p = build_problem(data, name, -1)
        if eligible(p):
            pool[name] = p
    names, D = meta_distance({n: p.meta for n, p in pool.items()})
    out = []
    for t in targets:
        i = names.index(t.dataset)
        order = [names[j] for j in np.argsort(D[i]) if names[j] != t.dataset]
        out.append((t, pool[order[0]], pool[order[-1]]))
    return out


def _cost_to_target(loop: Any, problem: Any) -> tuple[float, int]:
    """Cost spent until the first full-size result within the target, and experiments run."""
    from sciwm.bench.campaign.lcdb_product import answered_anchor
    from sciwm.experiment import Status

    spent = 0.0
    for rec in loop.state.finished:
        obs = rec.observation
        spent += obs.cost or 0.0
        if (
            obs.status is Status.COMPLETED
            and answered_anchor(obs.metadata) == problem.top
            and obs.outcomes["accuracy"] >= problem.target
        ):
            return spent, len(loop.state.finished)
    return math.inf, len(loop.state.finished)


def _campaign(problem: Any, name: str, seed: int, warm: str | None = None) -> str:
    from sciwm.bench.campaign.lcdb_product import lcdb_campaign_file

    cap = sum(t for _, t in problem.full().values())
    text = lcdb_campaign_file(problem, METHOD, seed, cap, None)
    first = text.splitlines()[1]
    assert first.startswith("name = ")
    text = text.replace(first, f'name = "{name}"', 1)
    # virtual answers off: the shipped gate ends a cold gp campaign on LCDB after about 5
    # results ("none is worth its predicted cost"), before it can reach the target
    assert "[scheduler]\n" in text
    text = text.replace("[scheduler]\n", "[scheduler]\nvirtual = false\n", 1)
    if warm is not None:
        text += f'\n[warm_start]\ncampaigns = ["{warm}"]\n'
    return text


def run_pair(task: tuple[Any, Any, Any, int, str]) -> list[dict[str, Any]]:
    """Sources, cold and warm campaigns of one target and seed (a worker's unit of work)."""
    from sciwm.bench.campaign.lcdb_product import ReplayBenchLoop
    from sciwm.bench.campaign.product import TimedLoop
    from sciwm.bench.campaign.runner import process_store
    from sciwm.spec import parse_spec

    target, related, unrelated, seed, root = task
    torch.set_num_threads(1)
    store = process_store(root)
    labs = Path(root) / "labs"

    def run(text: str, problem: Any, stop_at_target: bool) -> tuple[float, int, float]:
        spec = parse_spec(tomllib.loads(text), "<warm-start bench>")
        cls = ReplayBenchLoop if stop_at_target else TimedLoop
        t0 = time.perf_counter()
        loop = cls(spec, text, store, labs / spec.name)
        loop.problem = problem
        loop.run()
        cost, n = _cost_to_target(loop, problem)
        return cost, n, time.perf_counter() - t0

    out = []
    cold = run(_campaign(target, f"ws-{target.openmlid}-cold-{seed}", seed), target, True)
    for kind, source in (("related", related), ("unrelated", unrelated)):
        src_name = f"ws-src-{source.openmlid}-{seed}"
        if src_name not in store.campaigns():
            run(_campaign(source, src_name, seed + 100), source, False)
        name = f"ws-{target.openmlid}-{kind}-{seed}"
        warm = run(_campaign(target, name, seed, warm=src_name), target, True)
        out.append(
            {
                "target": target.name,
                "target_dataset": target.dataset,
                "source": source.name,
                "source_dataset": source.dataset,
                "pair": kind,
                "seed": seed,
                "cap": sum(t for _, t in target.full().values()),
                "cold_cost": cold[0],
                "warm_cost": warm[0],
                "cold_experiments": cold[1],
                "warm_experiments": warm[1],
                "cold_wall_s": cold[2],
                "warm_wall_s": warm[2],
            }
        )
    return out


def ratio(cold: float, warm: float, cap: float) -> tuple[float, str]:
    """``cold / warm`` with its bound when one of them did not reach the target."""
    if math.isfinite(cold) and math.isfinite(warm):
        return cold / warm, "exact"
    if math.isfinite(warm):
        return cap / warm, "lower"
    if math.isfinite(cold):
        return cold / cap, "upper"
    return math.nan, "none"


def rows_of(results: Sequence[dict[str, Any]]) -> list[Row]:
    """Rows: per pair and seed the costs and the ratio; medians per kind; the targets."""
    rows: list[Row] = []
    for r in results:
        base = {"problem": f"warm_start:{r['target']}", "pair": r["pair"], "seed": r["seed"]}
        q = {"source": r["source"], "source_dataset": r["source_dataset"], "cap": r["cap"]}
        for method, key in (("sciwm", "cold_cost"), ("sciwm_warm_start", "warm_cost")):
            rows.append(
                {**base, **q, "method": method, "metric": "cost_to_target", "value": r[key]}
            )
        value, bound = ratio(r["cold_cost"], r["warm_cost"], r["cap"])
        rows.append(
            {
                **base,
                **q,
                "method": "sciwm_warm_start",
                "metric": "warm_start_ratio",
                "value": value,
                "bound": bound,
            }
        )
    for kind, need in (("related", 2.0), ("unrelated", 1 / 1.1)):
        vals = [
            ratio(r["cold_cost"], r["warm_cost"], r["cap"])[0] for r in results if r["pair"] == kind
        ]
        vals = [v for v in vals if not math.isnan(v)]
        if not vals:
            continue
        med = statistics.median(vals)
        geo = math.exp(statistics.fmean(math.log(max(v, 1e-9)) for v in vals))
        base = {"problem": "warm_start:all", "method": "sciwm_warm_start", "pair": kind}
        rows.append({**base, "metric": "warm_start_ratio_median", "value": med, "pairs": len(vals)})
        rows.append(
            {**base, "metric": "warm_start_ratio_geomean", "value": geo, "pairs": len(vals)}
        )
        rows.append(
            {
                **base,
                "metric": "target_met",
                "value": int(med >= need),
                "criterion": f"median_ratio_{kind}_ge_{need:.3g}",
                "measured": f"{med:.2f}",
            }
        )
    return rows


def warm_start_suite(
    quick: bool, seeds: int | None, progress: bool, out: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Run the warm-start suite, print its table and targets."""
    from sciwm.bench.campaign.methods import usable_cpus

    n_seeds = seeds if seeds is not None else 1
    found = pairs(quick)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-warm-") as root:
        tasks = [(t, rel, unrel, s, root) for t, rel, unrel in found for s in range(n_seeds)]
        workers = max(1, min(len(tasks), usable_cpus()))
        with mp.get_context("spawn").Pool(workers) as pool:
            for group in pool.imap_unordered(run_pair, tasks):
                results.extend(group)
                if progress:
                    for r in group:
                        print(
                            f"[warm {len(results)}/{2 * len(tasks)} "
                            f"{time.perf_counter() - t0:6.0f}s]"
                            f" {r['target_dataset']:24s} <- {r['source_dataset']:24s} "
                            f"({r['pair']}, seed {r['seed']}): cold {r['cold_cost']:.1f}, warm "
                            f"{r['warm_cost']:.1f}",
                            file=sys.stderr,
                            flush=True,
                        )
    rows = rows_of(results)
    print("\nWarm start (LCDB): cost to target cold and warm, per target and source")
    for r in sorted(results, key=lambda r: (r["pair"], r["target"], r["seed"])):
        value, bound = ratio(r["cold_cost"], r["warm_cost"], r["cap"])
        mark = {"lower": ">=", "upper": "<=", "exact": ""}.get(bound, "")
        print(
            f"  {r['pair']:9s} {r['target_dataset']:24s} <- {r['source_dataset']:24s} seed "
            f"{r['seed']}: cold {r['cold_cost']:8.1f}  warm {r['warm_cost']:8.1f}  ratio "
            f"{mark}{value:.2f}"
        )
    for r in rows:
        if r["metric"] in ("warm_start_ratio_median", "warm_start_ratio_geomean"):
            print(f"  {r['pair']}: {r['metric']} {r['value']:.2f} over {r['pairs']} pairs")
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']}: {word} ({r['measured']})")
    config = {
        "pairs": [
            {"target": t.dataset, "related": rel.dataset, "unrelated": unrel.dataset}
            for t, rel, unrel in found
        ],
        "seeds": n_seeds,
        "campaign_file_example": _campaign(found[0][0], "example", 0, warm="ws-src-example-0"),
        "wall_s": time.perf_counter() - t0,
    }
    return rows, config


__all__ = ["meta_distance", "pairs", "ratio", "rows_of", "run_pair", "warm_start_suite"]
