"""The multi-objective benchmark's problems: BraninCurrin with the cost surface, LCDB replay.

- ``mo:branin_currin``: botorch's BraninCurrin (2-D, both objectives minimised), evaluated by
  the simulated lab (:mod:`sciwm.testing.problems`) with the campaign bench's cost surface
  ``10 ** ((u_1 + u_2) / 2)``; reference point botorch's ``(18, 6)``, best known hypervolume
  botorch's ``59.36``.
- ``mo:lcdb:<openml id>``: one held-out LCDB data set (the first eligible data set of each fold
  of :func:`sciwm.bench.campaign.lcdb_replay.heldout_problems`, in the dealt order: nothing
  about the methods chose them). The space is the learners recorded on it x the training size
  (64 to the largest recorded, log scale); the objectives are the recorded test accuracy (up)
  and train time in seconds (down); an experiment costs its train time. A size LCDB did not
  record is answered at the largest recorded one below it (the replay connector's ``snap``).
  The reference point is botorch's ``infer_reference_point`` of the whole table's Pareto front
  (its worst accuracy and its longest train time, moved 10% of the front's range further),
  and the best known hypervolume is the whole table's: every recorded configuration is known,
  so 95% of it is a hypervolume the methods can reach.

Every method sees the same numbers: the product's campaign asks the replay connector
(``time_outcome = "train_time"``) or the simulated lab, the peers call :meth:`evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from sciwm.pareto import as_tensor, hypervolume, reference_point
from sciwm.space import Parameter, SearchSpace, Value
from sciwm.testing.problems import problem_named

#: Smallest training size an LCDB campaign asks for.
MIN_ANCHOR = 64
#: Budget of an LCDB run, as a multiple of the train time of the table's Pareto front (what a
#: method that knew the front pays to run it once).
LCDB_CAP_FRONTS, LCDB_CAP_FRONTS_QUICK = 3.0, 2.0


@dataclass(frozen=True)
class MOBenchProblem:
    """One problem of the multi-objective benchmark.

    Attributes:
        name: ``mo:branin_currin`` or ``mo:lcdb:<openml id>``.
        objectives: Outcome names.
        maximize: Their directions.
        ref: The reference point (natural sign), written into the product's campaign file.
        best_hv: The best known hypervolume.
        cap: Budget per run (cost units) in the full benchmark.
        cap_quick: Budget per run with ``--quick``.
        unit: The cost unit.
        dataset: LCDB's name of the data set (LCDB problems).
        curves: ``{learner: {anchor: (accuracy, train_time)}}`` (LCDB problems).
    """

    name: str
    objectives: tuple[str, ...]
    maximize: tuple[bool, ...]
    ref: tuple[float, ...]
    best_hv: float
    cap: float
    cap_quick: float
    unit: str = "cost"
    dataset: str = ""
    curves: Mapping[str, Mapping[int, tuple[float, float]]] = field(default_factory=dict)

    @property
    def is_lcdb(self) -> bool:
        """Whether this is an LCDB replay problem."""
        return bool(self.dataset)

    def space(self) -> SearchSpace:
        """The search space of the campaign and of every peer."""
        if not self.is_lcdb:
            return problem_named("branin_currin").space()
        return SearchSpace(
            (
                Parameter("learner", "categorical", choices=tuple(sorted(self.curves))),
                Parameter("train_size", "int", MIN_ANCHOR, self.top, log=True),
            )
        )

    @property
    def top(self) -> int:
        """The largest training size recorded on the data set (LCDB problems)."""
        return max(a for c in self.curves.values() for a in c)

    def evaluate(self, parameters: Mapping[str, Value]) -> tuple[dict[str, float] | None, float]:
        """Outcomes (``None``: not recorded, a failure) and cost of one experiment."""
        if not self.is_lcdb:
            outcomes, cost = problem_named("branin_currin").evaluate_outcomes(parameters)  # type: ignore[union-attr]
            return outcomes, cost
        curve = self.curves.get(str(parameters["learner"]), {})
        below = [a for a in curve if a <= int(round(float(parameters["train_size"])))]
        if not below:
            return None, 0.0
        score, train_time = curve[max(below)]
        return {"accuracy": score, "train_time": train_time}, train_time

    def hypervolume(self, rows: list[list[float]]) -> float:
        """Hypervolume of objective rows (natural sign) against :attr:`ref`."""
        return hypervolume(as_tensor(rows, len(self.objectives)), self.maximize, self.ref)

    def campaign_file(self, name: str, seed: int, cap: float, max_experiments: int) -> str:
        """The campaign file of the product's run (shipped defaults but the poll interval)."""
        lines = ["[campaign]", f'name = "{name}"', f"seed = {int(seed)}", ""]
        for p in self.space().parameters:
            lines += ["[[parameters]]", f'name = "{p.name}"', f'type = "{p.kind}"']
            if p.kind == "categorical":
                lines.append("choices = [" + ", ".join(f'"{c}"' for c in p.choices) + "]")
            else:
                lines += [f"low = {p.low!r}", f"high = {p.high!r}"]
                lines += ["log = true"] if p.log else []
            lines.append("")
        for n, m, r in zip(self.objectives, self.maximize, self.ref, strict=True):
            direction = "maximize" if m else "minimize"
            lines += ["[[objectives]]", f'name = "{n}"', f'direction = "{direction}"']
            lines += [f"ref = {r!r}", ""]
        lines += ["[budget]", f"total = {float(cap)!r}", f'unit = "{self.unit}"', ""]
        if self.is_lcdb:
            lines += ["[connector]", 'type = "lab_connectors.replay:ReplayConnector"', ""]
            lines += ["[connector.settings]", 'data = "lcdb"', f'dataset = "{self.dataset}"']
            lines += ['learner_param = "learner"', 'anchor_param = "train_size"']
            lines += ["snap = true", 'time_outcome = "train_time"', ""]
        else:
            lines += ["[connector]", 'type = "sciwm.testing.simulated_lab:SimulatedLab"']
            lines += ['settings = { problem = "branin_currin" }', ""]
        lines += ["[world_model]", 'type = "gp"', ""]
        lines += ["[scheduler]", "poll_interval_s = 0.0001", ""]
        lines += ["[stopping]", f"max_experiments = {int(max_experiments)}", ""]
        return "\n".join(lines)


def branin_currin() -> MOBenchProblem:
    """BraninCurrin with the cost surface (see the module docstring)."""
    p = problem_named("branin_currin")
    return MOBenchProblem(
        "mo:branin_currin",
        p.objectives,  # type: ignore[union-attr]
        (False, False),
        p.ref,  # type: ignore[union-attr]
        p.max_hv,  # type: ignore[union-attr]
        p.cap,
        p.cap_quick,
    )


def lcdb_problem(
    openmlid: int, dataset: str, curves: Mapping[str, Mapping[int, Any]]
) -> MOBenchProblem:
    """An LCDB data set as a two-objective problem (see the module docstring)."""
    table = {
        k: {int(a): (float(s), float(t)) for a, (s, t) in c.items() if a >= MIN_ANCHOR}
        for k, c in curves.items()
    }
    table = {k: c for k, c in table.items() if c}
    rows = [[s, t] for c in table.values() for s, t in c.values()]
    Y = as_tensor(rows, 2)
    ref = reference_point(Y, [True, False])
    assert ref is not None
    best = hypervolume(Y, [True, False], ref)
    from sciwm.pareto import pareto_mask

    front_cost = float(Y[pareto_mask(Y, [True, False])][:, 1].sum())
    return MOBenchProblem(
        f"mo:lcdb:{openmlid}",
        ("accuracy", "train_time"),
        (True, False),
        (float(ref[0]), float(ref[1])),
        best,
        _round_up(LCDB_CAP_FRONTS * front_cost),
        _round_up(LCDB_CAP_FRONTS_QUICK * front_cost),
        unit="s",
        dataset=dataset,
        curves=table,
    )


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits."""
    if x <= 0:
        return 1.0
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / scale) * scale


def mo_problems(n_lcdb: int) -> list[MOBenchProblem]:
    """BraninCurrin and the first ``n_lcdb`` held-out LCDB data sets."""
    out = [branin_currin()]
    if n_lcdb > 0:
        from sciwm.bench.campaign.lcdb_replay import heldout_problems
        from sciwm.lcdb.cache import load_lcdb

        data = load_lcdb()
        for p in heldout_problems(data, per_fold=1, limit=n_lcdb):
            out.append(lcdb_problem(p.openmlid, p.dataset, p.curves))
    return out


def random_point(space: SearchSpace, gen: torch.Generator) -> dict[str, Value]:
    """A uniform random point of ``space`` (every choice equally likely, log scales
    log-uniform)."""
    point: dict[str, Value] = {}
    for p in space.parameters:
        if p.kind == "categorical":
            point[p.name] = p.choices[int(torch.randint(len(p.choices), (1,), generator=gen))]
        else:
            point[p.name] = p.from_unit(float(torch.rand(1, generator=gen, dtype=torch.double)))
    return point
