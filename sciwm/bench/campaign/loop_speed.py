"""The loop's own speed with the ML-run world model, up to 100 results.

``sciwm bench campaign --problems loop`` runs the shipped ``sciwm/examples/mlrun_campaign.toml``
(LCDB's MagicTelescope replayed, the ML-run world model pretrained without it) through
:class:`flows.loop.CampaignLoop` (as ``sciwm campaign run --no-prefect``) with two changes: at
most :data:`EXPERIMENTS` experiments and a budget that never binds.

The space holds only 19 learners at the full training size, and the agent never runs a
learner at a smaller size once it has run it at full size, so a campaign started from nothing
ends after about 20 results: every learner measured at full size. To time the loop at 100
results the campaign is first given a history: :data:`HISTORY` replayed results of random
learners at random recorded training sizes below the largest (what a campaign that screened
at small sizes holds), written to its record store as finished experiments. The loop then
resumes the campaign from the store, as after a restart, and runs until it ends or reaches
:data:`EXPERIMENTS` results. The replay lab answers at once, so the campaign's wall time is
the loop's own: fitting the world model, proposing, gating and recording.

Rows (problem ``loop:mlrun``, method ``sciwm``): ``loop_overhead_s`` per experiment over each
quarter of the resumed run (``results`` gives the range; ``fit_s``, ``propose_s`` and
``store_s`` its parts, the rest being the gate, the connector and the poll interval's waits)
and from :data:`TARGET_FROM` results to the end, where the target (below :data:`TARGET_S` s)
is checked (``None`` and not met when no experiment ran there); ``pretrain_s``, the world
model's one-off pretraining, is reported apart and not counted.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scheduler.gate import Candidate
from sciwm.bench.campaign.product import TimedLoop
from sciwm.bench.common import Row
from sciwm.spec import parse_spec

#: Experiments the campaign runs.
EXPERIMENTS = 100
#: Results from which the loop's time per experiment is checked against :data:`TARGET_S`.
TARGET_FROM = 75
#: Results the campaign holds before the loop is timed (replayed, below the full size).
HISTORY = 75
#: The loop's seconds per experiment it must stay below.
TARGET_S = 0.5
PROBLEM = "loop:mlrun"


class _MarkedLoop(TimedLoop):
    """The timed loop, noting the time and the fit and propose seconds at each proposal."""

    marks: list[tuple[int, float, float, float, float]]

    def propose(self, n: int) -> list[Candidate]:
        now = time.perf_counter()
        self.marks.append(
            (len(self.state.finished), now, self.fit_s, self.propose_s, self._store_seconds())
        )
        return super().propose(n)


def campaign_text(seed: int) -> str:
    """The shipped ML-run example campaign, run to :data:`EXPERIMENTS` results."""
    text = resources.files("sciwm.examples").joinpath("mlrun_campaign.toml").read_text()
    text = text.replace('name = "mlrun-replay-magic"', f'name = "bench-loop-mlrun-{seed}"')
    text = text.replace("seed = 0", f"seed = {int(seed)}", 1)
    text = text.replace("max_experiments = 40", f"max_experiments = {EXPERIMENTS}")
    return text.replace("total = 120.0", "total = 1000000.0")


def write_history(spec: Any, store: Any, seed: int, n: int = HISTORY) -> None:
    """Record ``n`` finished experiments of the campaign ``spec``: random learners at random
    recorded training sizes inside its space, below the largest, answered from LCDB as the
    replay connector answers them (score, recorded train time)."""
    from sciwm.bench.campaign.lcdb_replay import build_problem
    from sciwm.experiment import Experiment, Observation, Status
    from sciwm.lcdb.cache import load_lcdb

    settings = spec.connector.settings
    problem = build_problem(load_lcdb(progress=False), settings["dataset"], -1)
    size = next(p for p in spec.parameters if p.name == settings["anchor_param"])
    learners = next(p for p in spec.parameters if p.name == settings["learner_param"]).choices
    pool = sorted(
        (learner, anchor)
        for learner in learners
        for anchor in problem.curves.get(learner, {})
        if size.low <= anchor < size.high
    )
    picks = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    for seq, i in enumerate(sorted(picks.tolist())):
        learner, anchor = pool[i]
        score, cost = problem.curves[learner][anchor]
        params = {size.name: anchor, settings["learner_param"]: learner}
        exp = Experiment.create(spec.name, seq, params)
        rec = store.record_submitted(store.record_proposal(exp, None), {"history": seq})
        meta = {"dataset": problem.dataset, "learner": learner, "anchor": anchor}
        store.record_observation(
            rec, Observation(exp.id, Status.COMPLETED, {"accuracy": score}, cost, meta)
        )


def run_loop(seed: int, root: Path) -> dict[str, Any]:
    """Write the campaign's history, then resume and run it: its marks (``(results, time,
    fit s, propose s, store s)`` at each proposal, and at the start and the end),
    experiments and pretraining seconds."""
    from sciwm.bench.campaign.runner import process_store
    from sciwm.registry import build_world_model

    text = campaign_text(seed)
    spec = parse_spec(tomllib.loads(text), "<loop speed>")
    t0 = time.perf_counter()  # the one-off pretraining, memoised in this process
    build_world_model(spec.world_model, spec.space(), spec.outcome_names).fit([], [])
    pretrain = time.perf_counter() - t0
    store = process_store(root)
    store.open_campaign(spec, text)
    write_history(spec, store, seed)
    loop = _MarkedLoop(spec, text, store, root / spec.name)
    start = len(loop.state.finished)
    loop.marks = [(start, time.perf_counter(), 0.0, 0.0, loop._store_seconds())]
    loop.run()
    n = len(loop.state.finished)
    loop.marks.append((n, time.perf_counter(), loop.fit_s, loop.propose_s, loop._store_seconds()))
    return {
        "seed": seed,
        "marks": loop.marks,
        "experiments": n,
        "history": start,
        "pretrain_s": pretrain,
        "reason": loop.state.stop_reason,
    }


def rows_of(run: dict[str, Any]) -> list[Row]:
    """``loop_overhead_s`` rows of one run (see the module docstring)."""
    n, marks, h = run["experiments"], run["marks"], run.get("history", 0)
    base = {"problem": PROBLEM, "method": "sciwm", "seed": run["seed"]}
    out: list[Row] = [{**base, "metric": "pretrain_s", "value": run["pretrain_s"]}]

    def at(k: int) -> tuple[int, float, float, float, float]:
        """The first mark with at least ``k`` results (the end mark at the latest)."""
        return next(m for m in marks if m[0] >= k or m is marks[-1])

    q = (n - h) / 4
    spans = [(h + round(i * q), h + round((i + 1) * q)) for i in range(4)]
    for i, (lo, hi) in enumerate([*spans, (max(h, TARGET_FROM), n)]):
        a, b = at(lo), (marks[-1] if hi >= n else at(hi))
        per = _per_experiment(a, b)
        out.append(
            {
                **base,
                "metric": "loop_overhead_s",
                "value": per(1),
                "results": [a[0], b[0]],
                "span": "quarter" if i < len(spans) else f"from_{TARGET_FROM}",
                "fit_s": per(2),
                "propose_s": per(3),
                "store_s": per(4),
            }
        )
    last = out[-1]
    out.append(
        {
            **base,
            "metric": "target_met",
            "value": int(last["value"] is not None and last["value"] < TARGET_S),
            "criterion": f"loop_below_{TARGET_S:g}s_from_{TARGET_FROM}_results",
            "measured": last["value"],
        }
    )
    return out


def loop_suite(
    quick: bool, seeds: int | None, progress: bool, out: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Run the loop-speed suite (one seed; ``seeds`` more), print its table and target."""
    n_seeds = seeds if seeds is not None else 1
    rows: list[Row] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-loop-") as root:
        for seed in range(n_seeds):
            run = run_loop(seed, Path(root))
            rows += rows_of(run)
            if progress:
                print(
                    f"[loop seed {seed} {time.perf_counter() - t0:6.0f}s] {run['history']} "
                    f"results recorded, then {run['experiments'] - run['history']} experiments "
                    f"in {run['marks'][-1][1] - run['marks'][0][1]:.1f} s of loop "
                    f"({run['reason']})",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"\nThe loop's own seconds per experiment (mlrun_campaign.toml resumed from {HISTORY} "
        f"recorded results, to {EXPERIMENTS}):"
    )
    print("| seed | results | loop | fit | propose | store |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["metric"] == "loop_overhead_s":
            lo, hi = r["results"]
            span = f"{lo}-{hi}" if r["span"] == "quarter" else f"{lo}-{hi} (target)"
            cells = [_s(r[k]) for k in ("value", "fit_s", "propose_s", "store_s")]
            print(f"| {r['seed']} | {span} | {' | '.join(cells)} |")
    for r in rows:
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']} (seed {r['seed']}): {word} ({_s(r['measured'])} s)")
    config = {
        "campaign": "sciwm/examples/mlrun_campaign.toml",
        "experiments": EXPERIMENTS,
        "history": HISTORY,
        "seeds": n_seeds,
        "wall_s": time.perf_counter() - t0,
    }
    return rows, config


def _per_experiment(a: tuple, b: tuple) -> Callable[[int], float | None]:
    """Seconds per experiment of mark field ``k`` between marks ``a`` and ``b`` (``None``:
    no experiment ran between them)."""
    count = b[0] - a[0]
    return lambda k: (b[k] - a[k]) / count if count > 0 else None


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


__all__ = [
    "EXPERIMENTS",
    "HISTORY",
    "TARGET_FROM",
    "TARGET_S",
    "campaign_text",
    "loop_suite",
    "rows_of",
    "write_history",
]
