"""Result files and the regret plot of the LCDB replay campaigns.

:func:`runs_from_rows` rebuilds the runs from a result file's ``run`` rows, :func:`merge`
combines result files (e.g. a re-run of the product's methods beside an earlier run's peers),
:func:`plot_regret` draws regret against real cost per method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciwm.bench.campaign.lcdb_replay import Fit
from sciwm.bench.campaign.lcdb_runner import LCDB_METHODS, LcdbRun
from sciwm.bench.campaign.real_report import BUDGETS, lcdb_rows, regret_at, table
from sciwm.bench.common import Row


def runs_from_rows(rows: Sequence[Row]) -> list[LcdbRun]:
    """The runs of a result file's ``run`` rows (to merge result files, or re-plot one).

    Non-finite numbers, which JSON keeps as ``null``, come back as ``nan`` (a lost fit's
    score).
    """

    def num(v: Any) -> float:
        return math.nan if v is None else float(v)

    out = []
    for r in rows:
        if r.get("metric") != "run" or "trace" not in r:
            continue
        fits = tuple(
            Fit(str(k), None if a is None else int(a), num(s), num(c), num(sp))
            for k, a, s, c, sp in r["trace"]
        )
        run = r["run"]
        out.append(
            LcdbRun(
                r["problem"],
                r["method"],
                int(r["seed"]),
                num(run["cap"]),
                num(run["oracle_cost"]),
                num(run["best"]),
                num(run["worst"]),
                num(run["target"]),
                int(run["top"]),
                fits,
                str(r["reason"]),
                num(r["wall_s"]),
                dict(r.get("figures") or {}),
            )
        )
    return out


def plot_regret(runs: Sequence[LcdbRun], path: Path) -> Path:
    """PNG of regret against real cost (multiples of the oracle's) per method: the median over
    data sets and seeds, the band their quartiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.geomspace(0.1, 200.0, 60)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for method in [m for m in LCDB_METHODS if any(r.method == m for r in runs)]:
        mine = [r for r in runs if r.method == method]
        curves = np.array([[regret_at(r, x * r.oracle_cost) for x in grid] for r in mine])
        med = np.median(curves, 0)
        style = {"lw": 2.4} if method == "sciwm" else {"lw": 1.3}
        (line,) = ax.plot(grid, med, label=method, **style)
        ax.fill_between(
            grid, *np.quantile(curves, [0.25, 0.75], 0), color=line.get_color(), alpha=0.12
        )
    for b in BUDGETS:
        ax.axvline(b, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("real cost spent (multiples of the oracle's cost)")
    ax.set_ylabel("regret (accuracy at full size)")
    n = len({r.problem for r in runs})
    seeds = len({r.seed for r in runs})
    ax.set_title(f"LCDB replay campaigns: {n} held-out data sets x {seeds} seed(s)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def merge(out: Path, sources: Sequence[Path]) -> dict[str, Any]:
    """Merge the LCDB runs of result files (a later file's run of the same problem, method and
    seed replaces an earlier one), write the merged rows to ``out`` and its regret plot.

    Run as ``python -m sciwm.bench.campaign.real_files OUT.json IN.json [IN.json ...]``, e.g.
    to put a re-run of the product's methods beside the peers of an earlier full run.
    """
    import json

    from sciwm.bench.common import make_result, save_result

    runs: dict[tuple[str, str, int], LcdbRun] = {}
    for path in sources:
        rows = json.loads(Path(path).read_text())["rows"]
        for run in runs_from_rows(rows):
            runs[(run.problem, run.method, run.seed)] = run
    merged = list(runs.values())
    rows = lcdb_rows(merged)
    png = plot_regret(merged, Path(out).with_name(Path(out).stem + "_lcdb_regret.png"))
    result = make_result(
        "campaign", rows, {"merged_from": [str(p) for p in sources], "plot": str(png)}
    )
    save_result(out, result)
    print(table(rows))
    return result


if __name__ == "__main__":  # pragma: no cover - the merge command
    import sys

    merge(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])


__all__ = ["merge", "plot_regret", "runs_from_rows"]
