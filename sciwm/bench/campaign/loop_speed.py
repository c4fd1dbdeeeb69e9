"""The loop's own speed with the ML-run world model, up to 100 results.

``sciwm bench campaign --problems loop`` runs the shipped ``sciwm/examples/mlrun_campaign.toml``
(LCDB's MagicTelescope replayed, the ML-run world model pretrained without it) through
:class:`flows.loop.CampaignLoop` (as ``sciwm campaign run --no-prefect``) with two changes: at
most :data:`EXPERIMENTS` experiments and a budget that never binds, so that the campaign
reaches 100 results. The replay lab answers at once, so the campaign's wall time is the
loop's own: fitting the world model, proposing, gating and recording.

Rows (problem ``loop:mlrun``, method ``sciwm``): ``loop_overhead_s`` per experiment over each
quarter of the campaign (``results`` gives the range; ``fit_s``, ``propose_s`` and ``store_s``
its parts, the rest being the gate, the connector and the poll interval's waits)
and from :data:`TARGET_FROM` results to the end, where the target (below
:data:`TARGET_S` s) is checked; ``pretrain_s``, the world model's one-off pretraining, is
reported apart and not counted.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from scheduler.gate import Candidate
from sciwm.bench.campaign.product import TimedLoop
from sciwm.bench.common import Row
from sciwm.spec import parse_spec

#: Experiments the campaign runs.
EXPERIMENTS = 100
#: Results from which the loop's time per experiment is checked against :data:`TARGET_S`.
TARGET_FROM = 75
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


def run_loop(seed: int, root: Path) -> dict[str, Any]:
    """Run the campaign once: its marks (``(results, time, fit s, propose s, store s)`` at
    each proposal, and at the start and the end), experiments and pretraining seconds."""
    from sciwm.bench.campaign.runner import process_store
    from sciwm.registry import build_world_model

    text = campaign_text(seed)
    spec = parse_spec(tomllib.loads(text), "<loop speed>")
    t0 = time.perf_counter()  # the one-off pretraining, memoised in this process
    build_world_model(spec.world_model, spec.space(), spec.outcome_names).fit([], [])
    pretrain = time.perf_counter() - t0
    loop = _MarkedLoop(spec, text, process_store(root), root / spec.name)
    loop.marks = [(0, time.perf_counter(), 0.0, 0.0, loop._store_seconds())]
    loop.run()
    n = len(loop.state.finished)
    loop.marks.append((n, time.perf_counter(), loop.fit_s, loop.propose_s, loop._store_seconds()))
    return {"seed": seed, "marks": loop.marks, "experiments": n, "pretrain_s": pretrain}


def rows_of(run: dict[str, Any]) -> list[Row]:
    """``loop_overhead_s`` rows of one run (see the module docstring)."""
    n, marks = run["experiments"], run["marks"]
    base = {"problem": PROBLEM, "method": "sciwm", "seed": run["seed"]}
    out: list[Row] = [{**base, "metric": "pretrain_s", "value": run["pretrain_s"]}]

    def at(k: int) -> tuple[int, float, float, float, float]:
        """The first mark with at least ``k`` results (the end mark at the latest)."""
        return next(m for m in marks if m[0] >= k or m is marks[-1])

    spans = [(0, n // 4), (n // 4, n // 2), (n // 2, 3 * n // 4), (3 * n // 4, n)]
    for i, (lo, hi) in enumerate([*spans, (TARGET_FROM, n)]):
        a, b = at(lo), (marks[-1] if hi >= n else at(hi))
        count = max(1, b[0] - a[0])
        out.append(
            {
                **base,
                "metric": "loop_overhead_s",
                "value": (b[1] - a[1]) / count,
                "results": [a[0], b[0]],
                "span": "quarter" if i < len(spans) else f"from_{TARGET_FROM}",
                "fit_s": (b[2] - a[2]) / count,
                "propose_s": (b[3] - a[3]) / count,
                "store_s": (b[4] - a[4]) / count,
            }
        )
    last = out[-1]
    out.append(
        {
            **base,
            "metric": "target_met",
            "value": int(last["value"] < TARGET_S),
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
                    f"[loop seed {seed} {time.perf_counter() - t0:6.0f}s] {run['experiments']} "
                    f"experiments in {run['marks'][-1][1] - run['marks'][0][1]:.1f} s of loop",
                    file=sys.stderr,
                    flush=True,
                )
    print("\nThe loop's own seconds per experiment (mlrun_campaign.toml to 100 results):")
    print("| seed | results | loop | fit | propose | store |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["metric"] == "loop_overhead_s":
            lo, hi = r["results"]
            span = f"{lo}-{hi}" if r["span"] == "quarter" else f"{lo}-{hi} (target)"
            print(
                f"| {r['seed']} | {span} | {r['value']:.3f} | {r['fit_s']:.3f} | "
                f"{r['propose_s']:.3f} | {r['store_s']:.3f} |"
            )
    for r in rows:
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']} (seed {r['seed']}): {word} ({r['measured']:.3f} s)")
    config = {
        "campaign": "sciwm/examples/mlrun_campaign.toml",
        "experiments": EXPERIMENTS,
        "seeds": n_seeds,
        "wall_s": time.perf_counter() - t0,
    }
    return rows, config


__all__ = ["EXPERIMENTS", "TARGET_FROM", "TARGET_S", "campaign_text", "loop_suite", "rows_of"]
