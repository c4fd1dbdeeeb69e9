"""PNG plots of a campaign, read back from the record store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from sciwm.errors import StoreError
from sciwm.experiment import Status

if TYPE_CHECKING:
    from sciwm.store import Record, RecordStore


def best_so_far_curve(
    records: list[Record], objective: str, maximize: bool
) -> tuple[list[float], list[float]]:
    """Best objective against cumulative real cost, in order of completion.

    Every finished experiment adds its cost (failures cost too); the best value moves only on
    completed ones.

    Returns:
        ``(cumulative_cost, best_value)``, one point per completed experiment after the first.
    """
    finished = [r for r in records if r.observation is not None]
    finished.sort(key=lambda r: (r.observation.finished_at or 0.0, r.experiment.seq))  # type: ignore[union-attr]
    spent, best = 0.0, None
    xs: list[float] = []
    ys: list[float] = []
    for r in finished:
        obs = r.observation
        assert obs is not None
        spent += obs.cost or 0.0
        if obs.status is Status.COMPLETED and objective in obs.outcomes:
            v = obs.outcomes[objective]
            best = v if best is None else (max(best, v) if maximize else min(best, v))
        if best is not None:
            xs.append(spent)
            ys.append(best)
    return xs, ys


def write_report(store: RecordStore, name: str, out: Path) -> list[Path]:
    """Write ``best_vs_cost.png`` and ``predicted_vs_measured.png`` for a campaign.

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
    xs, ys = best_so_far_curve(records, obj, spec.maximize)
    if not xs:
        raise StoreError(f"campaign {name!r} has no completed experiment yet; nothing to plot")
    out.mkdir(parents=True, exist_ok=True)
    paths = []

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
    paths.append(p)

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
    paths.append(p)
    return paths


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
