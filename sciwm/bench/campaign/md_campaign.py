"""The MD campaign of ``sciwm bench campaign``: real OpenMM simulations, an answer in tolerance.

The question is the shipped MD campaign's (``sciwm/examples/md_campaign.toml``): at which
temperature between 300 and 600 K does alanine dipeptide in vacuum spend the most time in
the right-handed helix basin (αR)? Every experiment is a real OpenMM simulation through the
``openmm`` connector (length 20-500 ps, the fidelity); its cost is its wall time. The answer
of a campaign after each result is the temperature of its best measured αR population (what
``sciwm campaign status`` reports as best). The truth is the αR population of the data set's
reference runs (10 ns each, never trained on; ``data/md``), pooled per temperature and
fitted by a quadratic in temperature: the answer is *within tolerance* when the reference
population at the answer's temperature is within :data:`TOLERANCE` of the curve's maximum
over the range. ``sim_ps_to_answer`` and ``wall_s_to_answer`` are the simulated time
(equilibration included) and the wall time spent up to the result after which the answer
stays within tolerance to the end of the campaign (``inf``: it never settles there).

Methods, the same campaign file but for one setting each: ``sciwm`` (the ``md_emulator``
world model as shipped), ``sciwm_no_world_model`` (``gp``) and ``random`` (``acquisition =
"random"``: uniform conditions, the same loop and connector). Budget: :data:`BUDGET_S` s of
OpenMM wall time (``--quick``: :data:`QUICK_BUDGET_S`), at most :data:`MAX_EXPERIMENTS`.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sciwm.bench.common import Row

PROBLEM = "md:alanine_alpha_r"
#: Population within which the answer's reference αR must lie of the maximum.
TOLERANCE = 0.01
BUDGET_S = 45.0
QUICK_BUDGET_S = 30.0
MAX_EXPERIMENTS = 10
MD_METHODS = ("random", "sciwm_no_world_model", "sciwm")
OUTCOME = "pop_alpha_r"


def reference_curve() -> tuple[np.ndarray, float, dict[float, float]]:
    """Quadratic coefficients (highest power first) of the reference αR population in
    temperature, its maximum over 300-600 K, and the pooled population per temperature."""
    from sciwm.bench.md_metrics import angles
    from sciwm.md.observables import basin_populations
    from surrogates.md.data import load_dataset

    data = load_dataset()
    pooled: dict[float, list[float]] = {}
    for t in data.select(role="reference"):
        phi, psi = angles(t.positions.numpy().astype(np.float64), data.molecule)
        pops = basin_populations(phi, psi)
        pooled.setdefault(float(t.temperature), []).append(pops["alpha_r"])
    temps = np.array(sorted(pooled))
    pops = np.array([np.mean(pooled[t]) for t in temps])
    coef = np.polyfit(temps, pops, 2)
    grid = np.linspace(300.0, 600.0, 301)
    return (
        coef,
        float(np.polyval(coef, grid).max()),
        dict(zip(temps.tolist(), pops.tolist(), strict=True)),
    )


def md_campaign_file(method: str, seed: int, budget: float) -> str:
    """The shipped MD campaign file with the method's one change, its seed and budget."""
    text = resources.files("sciwm.examples").joinpath("md_campaign.toml").read_text()
    data = tomllib.loads(text)
    data["campaign"]["name"] = f"md-alanine-{method.replace('_', '-')}-{seed}"
    data["campaign"]["seed"] = int(seed)
    data["budget"]["total"] = float(budget)
    data["stopping"]["max_experiments"] = MAX_EXPERIMENTS
    if method == "sciwm_no_world_model":
        data["world_model"] = {"type": "gp"}
    elif method == "random":
        data["world_model"] = {"type": "gp"}
        data["scheduler"]["acquisition"] = "random"
    return _dumps(data)


def _dumps(data: dict[str, Any]) -> str:
    """A small TOML writer for the campaign file's shape (tables, arrays of tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines: list[str] = []
    for key, section in data.items():
        items = section if isinstance(section, list) else [section]
        for item in items:
            lines.append(f"[[{key}]]" if isinstance(section, list) else f"[{key}]")
            subs = {k: v for k, v in item.items() if isinstance(v, dict) and k == "settings"}
            lines += [f"{k} = {value(v)}" for k, v in item.items() if k not in subs]
            lines.append("")
            for k, v in subs.items():
                lines.append(f"[{key}.{k}]")
                lines += [f"{kk} = {value(vv)}" for kk, vv in v.items()]
                lines.append("")
    return "\n".join(lines)


def run_md_campaign(method: str, seed: int, budget: float, root: Path, store: Any) -> dict:
    """One campaign through :class:`flows.loop.CampaignLoop`; its trace of real results."""
    from sciwm.bench.campaign.product import TimedLoop
    from sciwm.experiment import Status
    from sciwm.spec import parse_spec

    text = md_campaign_file(method, seed, budget)
    spec = parse_spec(tomllib.loads(text), f"<md {method}>")
    loop = TimedLoop(spec, text, store, root / spec.name)
    t0 = time.perf_counter()
    loop.run()
    wall = time.perf_counter() - t0
    trace = []
    for rec in loop.state.finished:
        obs = rec.observation
        assert obs is not None
        ok = obs.status is Status.COMPLETED
        trace.append(
            {
                "temperature": float(rec.experiment.parameters["temperature"]),
                "length_ps": float(rec.experiment.parameters["length_ps"]),
                "value": float(obs.outcomes[OUTCOME]) if ok else math.nan,
                "cost": float(obs.cost or 0.0),
            }
        )
    return {"trace": trace, "wall_s": wall, "fit_s": loop.fit_s, "propose_s": loop.propose_s}


def settle(trace: list[dict], coef: np.ndarray, best: float, equilibrate_ps: float) -> dict:
    """Cost to the answer that stays within tolerance, and the final answer."""
    answers, sim, wall = [], 0.0, 0.0
    top = -math.inf
    answer = math.nan
    for r in trace:
        sim += r["length_ps"] + equilibrate_ps
        wall += r["cost"]
        if math.isfinite(r["value"]) and r["value"] > top:
            top, answer = r["value"], r["temperature"]
        ok = math.isfinite(answer) and float(np.polyval(coef, answer)) >= best - TOLERANCE
        answers.append((ok, sim, wall))
    out = {"sim_ps_to_answer": math.inf, "wall_s_to_answer": math.inf, "answer_K": answer}
    for i, (ok, s, w) in enumerate(answers):
        if ok and all(a[0] for a in answers[i:]):
            out.update(sim_ps_to_answer=s, wall_s_to_answer=w)
            break
    out["sim_ps"], out["real_wall_s"] = sim, wall
    return out


def md_suite(
    quick: bool, seeds: int | None, progress: bool, out: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Run the MD campaigns, print their table, return ``(rows, config)``."""
    from sciwm.bench.campaign.product import TimedStore

    n_seeds = seeds if seeds is not None else (1 if quick else 2)
    budget = QUICK_BUDGET_S if quick else BUDGET_S
    coef, best, pooled = reference_curve()
    eq = float(
        tomllib.loads(md_campaign_file("sciwm", 0, 1.0))["connector"]["settings"].get(
            "equilibrate_ps", 5.0
        )
    )
    runs: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-md-") as root:
        store = TimedStore(f"sqlite:///{Path(root) / 'mlflow.db'}")
        for seed in range(n_seeds):
            for method in MD_METHODS:
                r = run_md_campaign(method, seed, budget, Path(root), store)
                r.update(settle(r["trace"], coef, best, eq), method=method, seed=seed)
                runs.append(r)
                if progress:
                    print(
                        f"[md {time.perf_counter() - t0:5.0f}s] {method:21s} seed {seed}: answer "
                        f"{r['answer_K']:.0f} K, {r['sim_ps_to_answer']:.0f} ps / "
                        f"{r['wall_s_to_answer']:.1f} s to it ({len(r['trace'])} runs)",
                        file=sys.stderr,
                        flush=True,
                    )
    rows = md_rows(runs)
    print("\nMD campaign (alanine dipeptide, temperature of the most αR; medians over seeds):")
    for r in rows:
        if r["metric"] in ("sim_ps_to_answer", "wall_s_to_answer", "reached_fraction"):
            print(f"  {r['method']:21s} {r['metric']:18s} {r['value']}")
    config = {
        "problem": PROBLEM,
        "tolerance": TOLERANCE,
        "budget_s": budget,
        "max_experiments": MAX_EXPERIMENTS,
        "seeds": n_seeds,
        "reference_alpha_r": pooled,
        "reference_max": best,
        "reference_quadratic": coef.tolist(),
        "wall_s": time.perf_counter() - t0,
    }
    return rows, config


def md_rows(runs: list[dict]) -> list[Row]:
    """Rows per method: medians over seeds of simulated and wall time to the answer."""
    rows: list[Row] = []
    for method in MD_METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        base = {"problem": PROBLEM, "method": method, "runs": len(mine)}
        for metric in ("sim_ps_to_answer", "wall_s_to_answer"):
            v = float(np.median([r[metric] for r in mine]))
            rows.append({**base, "metric": metric, "value": v, "censored": math.isinf(v)})
        reached = sum(math.isfinite(r["sim_ps_to_answer"]) for r in mine) / len(mine)
        rows.append({**base, "metric": "reached_fraction", "value": reached})
        # the loop's own time: its wall time less the simulations' (one runs at a time)
        n = sum(len(r["trace"]) for r in mine)
        own = sum(r["wall_s"] - r["real_wall_s"] for r in mine)
        rows.append(
            {
                **base,
                "metric": "loop_overhead_s",
                "value": own / max(n, 1),
                "fit_propose_s": sum(r["fit_s"] + r["propose_s"] for r in mine) / max(n, 1),
            }
        )
        for r in mine:
            rows.append(
                {
                    **base,
                    "metric": "run",
                    "value": r["sim_ps_to_answer"],
                    "seed": r["seed"],
                    "answer_K": r["answer_K"],
                    "trace": r["trace"],
                }
            )
    return rows


__all__ = [
    "MD_METHODS",
    "PROBLEM",
    "TOLERANCE",
    "md_campaign_file",
    "md_rows",
    "md_suite",
    "reference_curve",
    "settle",
]
