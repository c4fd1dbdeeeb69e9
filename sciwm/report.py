"""PNG plots of a campaign, read back from the record store."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sciwm.errors import StoreError
from sciwm.experiment import Status
from sciwm.pareto import as_tensor, feasible, hypervolume
from sciwm.summary import completed_in_order, pareto_summary

if TYPE_CHECKING:
    from sciwm.spec import CampaignSpec
    from sciwm.store import Record, RecordStore


def best_so_far_curve(
    records: list[Record], objective: str, maximize: bool, constraints: Sequence[Any] = ()
) -> tuple[list[float], list[float]]:
    """Best (feasible) objective against cumulative real cost, in order of completion.

    Every finished experiment adds its cost (failures cost too); the best value moves only on
    completed ones that satisfy every constraint.

    Returns:
        ``(cumulative_cost, best_value)``, one point per completed experiment after the first.
    """
    spent, best = 0.0, None
    xs: list[float] = []
    ys: list[float] = []
    for r in completed_in_order(records):
        obs = r.observation
        assert obs is not None
        spent += obs.cost or 0.0
        if (
            obs.status is Status.COMPLETED
            and objective in obs.outcomes
            and feasible(obs.outcomes, constraints)
        ):
            v = obs.outcomes[objective]
            best = v if best is None else (max(best, v) if maximize else min(best, v))
        if best is not None:
            xs.append(spent)
            ys.append(best)
    return xs, ys


def hypervolume_curve(records: list[Record], spec: CampaignSpec) -> tuple[list[float], list[float]]:
    """Hypervolume of the feasible results so far against cumulative real cost.

    The reference point is the one :func:`sciwm.summary.pareto_summary` reports (the campaign
    file's, or inferred from every result), fixed over the whole curve.

    Returns:
        ``(cumulative_cost, hypervolume)``, one point per finished experiment once one result
        counts.
    """
    names = [o.name for o in spec.objectives]
    maximize = [o.maximize for o in spec.objectives]
    ref = pareto_summary(records, spec)["ref"]
    if ref is None:
        return [], []
    spent = 0.0
    rows: list[list[float]] = []
    xs: list[float] = []
    ys: list[float] = []
    for r in completed_in_order(records):
        obs = r.observation
        assert obs is not None
        spent += obs.cost or 0.0
        if (
            obs.status is Status.COMPLETED
            and all(n in obs.outcomes for n in names)
            and feasible(obs.outcomes, spec.constraints)
        ):
            rows.append([obs.outcomes[n] for n in names])
        if rows:
            xs.append(spent)
            ys.append(hypervolume(as_tensor(rows, len(names)), maximize, ref))
    return xs, ys


def write_report(store: RecordStore, name: str, out: Path) -> list[Path]:
    """Write ``best_vs_cost.png`` and ``predicted_vs_measured.png`` for a campaign.

    A campaign with several objectives gets ``pareto_front.png`` (every result in the plane of
    the first two objectives, the front highlighted) and ``hypervolume_vs_cost.png`` in place
    of ``best_vs_cost.png``; with ``[[constraints]]`` the best is the best feasible result.

    Args:
        store: The record store.
        name: Campaign name.
        out: Output folder (created).

    Returns:
        The written files.

    Raises:
        StoreError: If the campaign has no finished experiment yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = store.campaign_spec(name)
    records = store.records(name)
    obj = spec.objective.name
    if spec.multi_objective:
        xs, ys = hypervolume_curve(records, spec)
    else:
        xs, ys = best_so_far_curve(records, obj, spec.maximize, spec.constraints)
    if not xs:
        what = "feasible completed" if spec.constraints else "completed"
        raise StoreError(f"campaign {name!r} has no {what} experiment yet; nothing to plot")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if spec.multi_objective:
        paths += _front_plots(plt, records, spec, xs, ys, out)
    else:
        paths.append(_best_plot(plt, spec, xs, ys, out))
    paths.append(_prediction_plot(plt, records, spec, out))
    return paths


def _best_plot(plt: Any, spec: CampaignSpec, xs: list[float], ys: list[float], out: Path) -> Path:
    """``best_vs_cost.png``: the best (feasible) objective against real cost."""
    name, obj = spec.name, spec.objective.name
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(xs, ys, where="post", color="tab:blue", label="best so far")
    ax.plot(xs, ys, "o", color="tab:blue", ms=3)
    ax.axvline(spec.budget.total, color="grey", ls="--", lw=1, label="budget")
    ax.set_xlabel(f"cumulative real cost ({spec.budget.unit})")
    ax.set_ylabel(f"best {obj}")
    ax.set_title(f"{name}: best {obj} against real cost")
    ax.legend(loc="lower right" if spec.maximize else "upper right")
    fig.tight_layout()
    p = out / "best_vs_cost.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def _front_plots(
    plt: Any, records: list[Record], spec: CampaignSpec, xs: list[float], ys: list[float], out: Path
) -> list[Path]:
    """``pareto_front.png`` and ``hypervolume_vs_cost.png`` (several objectives)."""
    names = [o.name for o in spec.objectives]
    maximize = [o.maximize for o in spec.objectives]
    summary = pareto_summary(records, spec)
    done = [
        r.observation.outcomes
        for r in records
        if r.observation is not None
        and r.observation.status is Status.COMPLETED
        and all(n in r.observation.outcomes for n in names)
    ]
    ok = [feasible(o, spec.constraints) for o in done]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    a, b = names[0], names[1]
    fy = [(o[a], o[b]) for o, f in zip(done, ok, strict=True) if f]
    iy = [(o[a], o[b]) for o, f in zip(done, ok, strict=True) if not f]
    if fy:
        ax.plot(*zip(*fy, strict=True), "o", color="tab:blue", ms=4, alpha=0.6, label="feasible")
    if iy:
        ax.plot(*zip(*iy, strict=True), "x", color="tab:red", ms=4, label="infeasible")
    pts = sorted((p["outcomes"][a], p["outcomes"][b]) for p in summary["front"])
    if pts:
        ax.step(
            *zip(*pts, strict=True), where="pre" if maximize[0] else "post", color="black", lw=1
        )
        ax.plot(*zip(*pts, strict=True), "o", color="black", ms=6, mfc="none", label="Pareto front")
    if summary["ref"] is not None:
        ax.plot(
            [summary["ref"][0]], [summary["ref"][1]], "s", color="grey", label="reference point"
        )
    arrow = {True: "(max)", False: "(min)"}
    ax.set_xlabel(f"{a} {arrow[maximize[0]]}")
    ax.set_ylabel(f"{b} {arrow[maximize[1]]}")
    extra = f" (first two of {len(names)} objectives)" if len(names) > 2 else ""
    ax.set_title(f"{spec.name}: Pareto front{extra}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p1 = out / "pareto_front.png"
    fig.savefig(p1, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(xs, ys, where="post", color="tab:blue", label="hypervolume")
    ax.plot(xs, ys, "o", color="tab:blue", ms=3)
    ax.axvline(spec.budget.total, color="grey", ls="--", lw=1, label="budget")
    ax.set_xlabel(f"cumulative real cost ({spec.budget.unit})")
    ax.set_ylabel("hypervolume")
    how = "inferred" if summary["ref_inferred"] else "given"
    ax.set_title(f"{spec.name}: hypervolume against real cost (ref {how})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    p2 = out / "hypervolume_vs_cost.png"
    fig.savefig(p2, dpi=120)
    plt.close(fig)
    return [p1, p2]


def _prediction_plot(plt: Any, records: list[Record], spec: CampaignSpec, out: Path) -> Path:
    """``predicted_vs_measured.png``: the first objective and the cost."""
    name, obj = spec.name, spec.objective.name
    pairs = [
        (r.prediction, r.observation)
        for r in records
        if r.prediction is not None
        and r.observation is not None
        and r.observation.status is Status.COMPLETED
        and obj in r.prediction.outcomes
        and obj in r.observation.outcomes
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    _pred_plot(axes[0], [(p.outcomes[obj], o.outcomes[obj]) for p, o in pairs], obj)
    cost_pairs = [
        (r.prediction.cost, r.observation.cost)
        for r in records
        if r.prediction is not None and r.observation is not None and r.observation.cost
    ]
    _pred_plot(axes[1], cost_pairs, f"cost ({spec.budget.unit})", log=True)
    fig.suptitle(f"{name}: world-model prediction before dispatch vs measured")
    fig.tight_layout()
    p = out / "predicted_vs_measured.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def _pred_plot(ax, pairs, label: str, log: bool = False) -> None:  # noqa: ANN001
    if not pairs:
        ax.text(
            0.5,
            0.5,
            "no predictions yet\n(the initial design runs unmodelled)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_title(label)
        return
    est = [e for e, _ in pairs]
    meas = [float(m) for _, m in pairs]
    mean = [e.mean for e in est]
    lo = [max(0.0, e.mean - e.lower) for e in est]
    hi = [max(0.0, e.upper - e.mean) for e in est]
    inside = sum(e.lower <= m <= e.upper for e, m in zip(est, meas, strict=True))
    ax.errorbar(meas, mean, yerr=[lo, hi], fmt="o", ms=3, capsize=2, alpha=0.8)
    lims = [min(meas + [e.lower for e in est]), max(meas + [e.upper for e in est])]
    if log:
        lims[0] = max(lims[0], 1e-6)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.plot(lims, lims, color="grey", lw=1, ls="--")
    level = est[0].level
    ax.set_xlabel(f"measured {label}")
    ax.set_ylabel(f"predicted {label} ({level:.0%} interval)")
    cov = inside / len(pairs)
    ax.set_title(f"{label}: {inside}/{len(pairs)} inside ({cov:.0%})")
    if not all(math.isfinite(v) for v in meas):
        ax.set_title(f"{label} (non-finite values dropped)")
