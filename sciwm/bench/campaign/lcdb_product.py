"""The product on LCDB replay campaigns: one campaign file per data set, method and seed.

``sciwm`` is the campaign a user would write for a held-out data set with the ML-run world
model pretrained on LCDB (``pretrain = "lcdb"``) restricted to the fold's training data sets
(``pretrain_data``, a run slice without the held-out fold), the data set's OpenML
meta-features given in ``dataset_meta``; ``sciwm_no_world_model`` is the same file with the
``gp`` world model. Both run through :class:`flows.loop.CampaignLoop` (as ``sciwm campaign
run --no-prefect``) with the replay connector answering from LCDB (``snap = true``), every
``[scheduler]`` setting left at the shipped default but the poll interval (the replay lab
answers at once). The benchmark ends a campaign once it has a result that reaches the target
(a user's stopping rule that knew it), or when the budget or the experiment cap does.

What the loop records beyond results (virtual answers, early stops) is read back from the
campaign's MLflow runs by :func:`recorded_figures`; a figure the product does not record is
reported as missing.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciwm.bench.campaign.lcdb_replay import MIN_ANCHOR, Fit, LcdbProblem
from sciwm.bench.campaign.product import POLL_INTERVAL_S, TimedLoop, TimedStore
from sciwm.experiment import Status
from sciwm.spec import parse_spec

#: The product's methods on LCDB and their world models.
LCDB_PRODUCT = {"sciwm": "mlrun", "sciwm_no_world_model": "gp", "sciwm_gate": "mlrun"}
#: Settings a variant changes from the shipped defaults, by table: ``sciwm_gate`` is the
#: ``sciwm`` campaign with the value gate's virtual answers on and the replay connector
#: walking each run up its learning curve (``curve = true``), so that early stopping has a
#: partial result to stop on: the row of those two features.
LCDB_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "sciwm_gate": {"scheduler": {"virtual": True}, "connector.settings": {"curve": True}},
}
REPLAY = "lab_connectors.replay:ReplayConnector"
MLRUN = "surrogates.mlrun.model:MLRunWorldModel"
#: Experiments at most per campaign (the budget normally ends it first).
MAX_EXPERIMENTS = 60


def _q(value: Any) -> str:
    """A TOML value (strings JSON-quoted, which TOML's basic strings accept)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_q(v) for v in value) + "]"
    return repr(float(value)) if isinstance(value, float) else str(value)


def lcdb_campaign_file(
    problem: LcdbProblem,
    method: str,
    seed: int,
    cap: float,
    pretrain_data: Path | None,
    max_experiments: int = MAX_EXPERIMENTS,
    replay_data: str = "lcdb",
) -> str:
    """The campaign file (TOML) of one product run on a held-out data set.

    Args:
        problem: The data set.
        method: A key of :data:`LCDB_PRODUCT` (a variant's settings: :data:`LCDB_VARIANTS`).
        seed: The campaign's seed.
        cap: The budget, seconds of recorded train time.
        pretrain_data: The fold's run slice (``sciwm`` only).
        max_experiments: ``[stopping] max_experiments``.
        replay_data: The replay connector's ``data`` (``"lcdb"`` or a run-table CSV).
    """
    low = min(a for a in problem.anchors if a >= MIN_ANCHOR)
    lines = [
        "[campaign]",
        f"name = {_q(f'lcdb-{problem.openmlid}-{method}-{seed}')}",
        f"seed = {int(seed)}",
        "",
        "[[parameters]]",
        'name = "learner"',
        'type = "categorical"',
        f"choices = {_q(list(problem.learners))}",
        "",
        "[[parameters]]",
        'name = "train_size"',
        'type = "int"',
        f"low = {low}",
        f"high = {problem.top}",
        "log = true",
        "fidelity = true",
        "",
        "[[objectives]]",
        'name = "accuracy"',
        'direction = "maximize"',
        "",
        "[budget]",
        f"total = {_q(float(cap))}",
        'unit = "s"',
        "",
        "[connector]",
        f"type = {_q(REPLAY)}",
        "",
        "[connector.settings]",
        f"data = {_q(replay_data)}",
        f"dataset = {_q(problem.dataset)}",
        'learner_param = "learner"',
        'anchor_param = "train_size"',
        "snap = true",
        *_variant_lines(method, "connector.settings"),
        "",
    ]
    if LCDB_PRODUCT[method] == "gp":
        lines += ["[world_model]", 'type = "gp"', ""]
    else:
        lines += ["[world_model]", f"type = {_q(MLRUN)}", "", "[world_model.settings]"]
        lines += ['pretrain = "lcdb"', 'learner_param = "learner"', 'anchor_param = "train_size"']
        lines += [f"dataset = {_q(problem.dataset)}"]
        if pretrain_data is not None:
            lines += [f"pretrain_data = {_q(str(pretrain_data))}"]
        lines += ["", f"[world_model.settings.dataset_meta.{_q(problem.dataset)}]"]
        lines += [f"{k} = {_q(float(v))}" for k, v in problem.meta.items() if math.isfinite(v)]
        lines += [""]
    lines += ["[scheduler]", f"poll_interval_s = {POLL_INTERVAL_S!r}"]
    lines += [*_variant_lines(method, "scheduler"), ""]
    lines += ["[stopping]", f"max_experiments = {int(max_experiments)}", ""]
    return "\n".join(lines)


def _variant_lines(method: str, table: str) -> list[str]:
    """``key = value`` lines of what the variant ``method`` sets in ``table``."""
    return [f"{k} = {_q(v)}" for k, v in LCDB_VARIANTS.get(method, {}).get(table, {}).items()]


class ReplayBenchLoop(TimedLoop):
    """The product's loop, ended by the benchmark once a result reaches the target."""

    problem: LcdbProblem

    def check_stop(self) -> str | None:
        for rec in self.state.finished:
            obs = rec.observation
            if obs is None or obs.status is not Status.COMPLETED:
                continue
            if answered_anchor(obs.metadata) == self.problem.top and (
                obs.outcomes["accuracy"] >= self.problem.target
            ):
                return "benchmark target reached"
        return super().check_stop()


def answered_anchor(metadata: dict[str, Any] | None) -> int | None:
    """The anchor the replay connector answered at (after snapping)."""
    if not metadata:
        return None
    at = metadata.get("snapped_to", metadata.get("anchor"))
    return None if at is None else int(at)


@dataclass
class ProductRun:
    """One product campaign on a data set.

    Attributes:
        fits: The real fits, in completion order (failed ones cost what they were charged).
        reason: Why the campaign ended.
        wall_s: Wall time of the loop (building it, i.e. pretraining, excluded).
        build_s: Seconds to build the loop (spec, world model, connector, store).
        figures: What the product recorded about virtual answers and early stops
            (:func:`recorded_figures`).
    """

    fits: list[Fit]
    reason: str
    wall_s: float
    build_s: float
    figures: dict[str, Any] = field(default_factory=dict)


def run_lcdb_product(
    problem: LcdbProblem,
    method: str,
    seed: int,
    cap: float,
    *,
    store: TimedStore,
    root: Path,
    pretrain_data: Path | None,
    max_experiments: int = MAX_EXPERIMENTS,
    replay_data: str = "lcdb",
) -> ProductRun:
    """Run one product campaign on ``problem``, recorded in ``store`` (arguments as
    :func:`lcdb_campaign_file`)."""
    text = lcdb_campaign_file(
        problem, method, seed, cap, pretrain_data, max_experiments, replay_data
    )
    spec = parse_spec(tomllib.loads(text), f"<{method} on {problem.name}>")
    in_store = store.seconds
    t0 = time.perf_counter()
    loop = ReplayBenchLoop(spec, text, store, root / spec.name)
    loop.problem = problem
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = loop.run()
    wall = time.perf_counter() - t0
    fits: list[Fit] = []
    spent = 0.0
    for rec in loop.state.finished:
        obs = rec.observation
        assert obs is not None
        spent += obs.cost or 0.0
        learner = str(rec.experiment.parameters["learner"])
        ok = obs.status is Status.COMPLETED
        fits.append(
            Fit(
                learner,
                answered_anchor(obs.metadata) if ok else None,
                float(obs.outcomes["accuracy"]) if ok else math.nan,
                float(obs.cost or 0.0),
                spent,
            )
        )
    figures = recorded_figures(store, spec.name, loop, problem)
    figures["store_s"] = store.seconds - in_store
    return ProductRun(fits, result.stop_reason, wall, build, figures)


def recorded_figures(
    store: TimedStore, campaign: str, loop: TimedLoop, problem: LcdbProblem
) -> dict[str, Any]:
    """What the product recorded about a campaign beyond its results, as counts.

    ``virtual``: proposals the product answered with the world model instead of a real run
    (read with the store's ``virtual_answers``); ``virtual_wrong``: those whose recorded
    LCDB result lies outside the interval the answer gave; ``virtual_saved_cost``: the
    predicted cost they saved. ``stopped_early`` / ``stopped_wrongly``: real runs the loop
    cancelled on their partial result (its ``state.stopped_early``), and those of them whose
    full result would have reached the target. A count is ``None`` where the product records
    no such thing (the benchmark then reports the figure as missing).
    """
    out: dict[str, Any] = {
        "experiments": len(loop.state.finished),
        "fit_s": loop.fit_s,
        "propose_s": loop.propose_s,
        "virtual": None,
        "virtual_wrong": None,
        "virtual_saved_cost": None,
        "stopped_early": None,
        "stopped_wrongly": None,
    }
    reader = getattr(store, "virtual_answers", None)
    if callable(reader):
        answers = list(reader(campaign))
        wrong = 0
        for a in answers:
            learner = str(a.parameters["learner"])
            at = problem.snap(learner, float(a.parameters["train_size"]))
            est = a.prediction.outcomes.get("accuracy")
            if at is None or est is None:
                continue
            truth = problem.curves[learner][at][0]
            wrong += not (est.lower <= truth <= est.upper)
        out.update(
            virtual=len(answers),
            virtual_wrong=wrong,
            virtual_saved_cost=float(sum(a.saved_cost for a in answers)),
        )
    stops = getattr(loop.state, "stopped_early", None)
    if stops is not None:  # the loop stops running experiments early: count what it stopped
        by_id = {rec.experiment.id: rec for rec in loop.state.finished}
        stopped = [by_id[k] for k, v in stops.items() if k in by_id and not v.get("waiting")]
        wrongly = 0
        for rec in stopped:
            learner = str(rec.experiment.parameters["learner"])
            at = problem.snap(learner, float(rec.experiment.parameters["train_size"]))
            if at == problem.top and problem.curves[learner][at][0] >= problem.target:
                wrongly += 1
        out.update(stopped_early=len(stopped), stopped_wrongly=wrongly)
    return out


__all__ = [
    "LCDB_PRODUCT",
    "LCDB_VARIANTS",
    "MAX_EXPERIMENTS",
    "ProductRun",
    "ReplayBenchLoop",
    "answered_anchor",
    "lcdb_campaign_file",
    "recorded_figures",
    "run_lcdb_product",
]
