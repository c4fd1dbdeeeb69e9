"""LCDB replay campaigns: the problems, the held-out folds and the in-process replay lab.

A problem is one OpenML data set of LCDB (``lcdb:<openml id>``). The space is LCDB's learners
recorded on it x the training size (the fidelity). A result at a training size costs the
recorded train time of that fit (mean over LCDB's seeds); a learning curve costs the fits it
took. A size that LCDB did not record is snapped to the largest recorded one at or below it
(the replay connector's ``snap = true``). The *target* is a result at the data set's largest
anchor within :data:`TOLERANCE` accuracy of the best learner's there; ``oracle_cost`` is the
train time of the cheapest learner that meets it (what a method that knew the answer pays).

Held-out folds: the 197 data sets with meta-features are dealt into :data:`N_FOLDS` folds
(seed :data:`FOLD_SEED`); the world model of a fold is pretrained on the data sets of all
other folds (a run slice, the ML-run world model's ``pretrain_data`` setting), and so are
the meta-learned peers. The evaluated data sets of a fold are its first ``per_fold``
eligible ones (at least :data:`MIN_LEARNERS` learners at a largest anchor of at least
:data:`MIN_TOP_ANCHOR`), in the fold's dealt order: nothing about the methods chose them.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sciwm.lcdb.learners import short_learner
from sciwm.lcdb.runs import RunData

#: Accuracy within which a full-size result counts as reaching the best learner's.
TOLERANCE = 0.01
#: Folds of the data sets, and the seed that deals them.
N_FOLDS = 6
FOLD_SEED = 0
#: Eligibility of an evaluated data set.
MIN_LEARNERS = 10
MIN_TOP_ANCHOR = 256
#: Smallest training size a campaign may ask for (the ML-run prior's ``MIN_ANCHOR``).
MIN_ANCHOR = 64


class BudgetSpent(Exception):
    """Raised by :class:`ReplayLab` once its cap is spent or its target is reached."""


@dataclass(frozen=True)
class LcdbProblem:
    """One LCDB data set as a campaign problem.

    Attributes:
        openmlid: OpenML id.
        dataset: LCDB's name of the data set.
        fold: Its fold.
        curves: ``{learner: {anchor: (score, train_time)}}`` (learner short names).
        top: The largest anchor recorded on the data set.
        meta: Its OpenML meta-features (what a user gives the world model).
    """

    openmlid: int
    dataset: str
    fold: int
    curves: dict[str, dict[int, tuple[float, float]]]
    top: int
    meta: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The problem's name in the rows, ``lcdb:<openml id>``."""
        return f"lcdb:{self.openmlid}"

    @property
    def learners(self) -> tuple[str, ...]:
        """Learners recorded on the data set."""
        return tuple(sorted(self.curves))

    def full(self) -> dict[str, tuple[float, float]]:
        """``{learner: (score, train_time)}`` at the largest anchor (learners that have it)."""
        return {k: c[self.top] for k, c in self.curves.items() if self.top in c}

    @property
    def best(self) -> float:
        """The best learner's accuracy at the largest anchor."""
        return max(s for s, _ in self.full().values())

    @property
    def worst(self) -> float:
        """The worst learner's accuracy there (a method without any full-size result)."""
        return min(s for s, _ in self.full().values())

    @property
    def target(self) -> float:
        """Accuracy a full-size result needs to reach the target."""
        return self.best - TOLERANCE

    @property
    def oracle_learner(self) -> str:
        """The cheapest learner that reaches the target at full size."""
        near = [(t, k) for k, (s, t) in self.full().items() if s >= self.target]
        return min(near)[1]

    @property
    def oracle_cost(self) -> float:
        """Its train time at full size."""
        return self.full()[self.oracle_learner][1]

    @property
    def anchors(self) -> list[int]:
        """Every anchor recorded on the data set from :data:`MIN_ANCHOR`, ascending."""
        return sorted({a for c in self.curves.values() for a in c if a >= MIN_ANCHOR})

    def snap(self, learner: str, anchor: float) -> int | None:
        """The recorded anchor a request of ``learner`` at ``anchor`` is answered at."""
        curve = self.curves.get(short_learner(learner))
        if not curve:
            return None
        below = [a for a in curve if a <= int(round(anchor))]
        return max(below) if below else None

    def ladder(self, eta: int = 3) -> list[int]:
        """Training sizes ``top / eta^k`` (snapped to recorded anchors, at least
        :data:`MIN_ANCHOR`), ascending: the rungs of successive halving."""
        grid = self.anchors
        out = [self.top]
        while True:
            i = bisect.bisect_right(grid, out[-1] / eta) - 1
            if i < 0 or grid[i] < MIN_ANCHOR or grid[i] >= out[-1]:
                break
            out.append(grid[i])
        return out[::-1]

    def low_anchor(self, fraction: float = 1 / 16) -> int:
        """The recorded anchor closest (in log) to ``fraction`` of the largest one."""
        grid = self.anchors
        want = math.log(max(self.top * fraction, MIN_ANCHOR))
        return min(grid, key=lambda a: abs(math.log(a) - want))


@dataclass(frozen=True)
class Fit:
    """One fit a method paid for.

    Attributes:
        learner: Learner short name.
        anchor: Training size it was answered at (after snapping; ``None``: not recorded).
        score: Test accuracy (``nan`` when not recorded or lost to the cap).
        cost: Train time charged, seconds.
        spent: Cost spent up to and including this fit.
    """

    learner: str
    anchor: int | None
    score: float
    cost: float
    spent: float


@dataclass
class ReplayLab:
    """The in-process replay lab of the peers: every fit asked for is charged.

    A fit that would take the spending past ``cap`` is charged up to the cap and its result
    is lost (as a lab stops an experiment at its budget); :class:`BudgetSpent` is raised
    then, and once a fit reaches the target.
    """

    problem: LcdbProblem
    cap: float
    fits: list[Fit] = field(default_factory=list)
    spent: float = 0.0

    def fit(self, learner: str, anchor: float) -> float:
        """Fit ``learner`` at ``anchor``; its accuracy (``nan`` when LCDB has no record)."""
        if self.spent >= self.cap:
            raise BudgetSpent
        learner = short_learner(learner)
        at = self.problem.snap(learner, anchor)
        if at is None:
            self.fits.append(Fit(learner, None, math.nan, 0.0, self.spent))
            return math.nan
        score, cost = self.problem.curves[learner][at]
        if self.spent + cost > self.cap:
            charged = self.cap - self.spent
            self.spent = self.cap
            self.fits.append(Fit(learner, at, math.nan, charged, self.spent))
            raise BudgetSpent
        self.spent += cost
        self.fits.append(Fit(learner, at, score, cost, self.spent))
        if at == self.problem.top and score >= self.problem.target:
            raise BudgetSpent
        return score


def folds(names: list[str], n_folds: int = N_FOLDS, seed: int = FOLD_SEED) -> dict[str, int]:
    """``{data set: fold}``: the data sets dealt into ``n_folds`` folds in a seeded order."""
    order = np.random.default_rng(seed).permutation(sorted(names))
    return {str(n): i % n_folds for i, n in enumerate(order)}


def build_problem(data: RunData, dataset: str, fold: int) -> LcdbProblem:
    """The problem of one data set of ``data`` (a run table with an ``openmlid`` column)."""
    runs = data.runs[data.runs["dataset"] == dataset]
    curves: dict[str, dict[int, tuple[float, float]]] = {}
    for r in runs.itertuples():
        key = short_learner(r.learner)
        curves.setdefault(key, {})[int(r.anchor)] = (float(r.score), float(r.train_time))
    if "openmlid" in runs.columns:
        openmlid = int(runs["openmlid"].iloc[0])
    else:  # a run slice keeps no OpenML ids: number the data set by its place in the table
        openmlid = data.dataset_names.index(dataset)
    return LcdbProblem(
        openmlid,
        dataset,
        fold,
        curves,
        int(runs["anchor"].max()),
        data.meta(dataset),
    )


def eligible(problem: LcdbProblem) -> bool:
    """Whether a data set is evaluated (enough learners at a large enough largest anchor)."""
    return len(problem.full()) >= MIN_LEARNERS and problem.top >= MIN_TOP_ANCHOR


def heldout_problems(
    data: RunData, per_fold: int, limit: int | None = None, n_folds: int = N_FOLDS
) -> list[LcdbProblem]:
    """The evaluated data sets: the first ``per_fold`` eligible ones of every fold, in the
    dealt order, fold by fold; ``limit`` keeps the first of them (``--quick``: one data set
    from each of the first folds)."""
    fold_of = folds(data.dataset_names, n_folds)
    by_fold: dict[int, list[LcdbProblem]] = {k: [] for k in range(n_folds)}
    for name, k in fold_of.items():
        if len(by_fold[k]) < per_fold:
            p = build_problem(data, name, k)
            if eligible(p):
                by_fold[k].append(p)
    out = [p for k in range(n_folds) for p in by_fold[k]]
    return out[:limit] if limit is not None else out


def fold_training(data: RunData, fold: int, n_folds: int = N_FOLDS) -> list[str]:
    """The data sets a fold's world model and meta-learned peers learn from."""
    fold_of = folds(data.dataset_names, n_folds)
    return sorted(n for n, k in fold_of.items() if k != fold)


def write_fold_slice(data: RunData, fold: int, folder: Path) -> Path:
    """The run slice of a fold's training data sets (the world model's ``pretrain_data``)."""
    from sciwm.lcdb.cache import write_slice

    path = Path(folder) / f"lcdb-fold{fold}-of{N_FOLDS}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_slice(data, fold_training(data, fold), path)
    return path


__all__ = [
    "FOLD_SEED",
    "MIN_ANCHOR",
    "N_FOLDS",
    "TOLERANCE",
    "BudgetSpent",
    "Fit",
    "LcdbProblem",
    "ReplayLab",
    "build_problem",
    "eligible",
    "fold_training",
    "folds",
    "heldout_problems",
    "write_fold_slice",
]
