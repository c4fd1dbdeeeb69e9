"""The peers of the LCDB replay campaigns, each paying for its fits in a :class:`ReplayLab`.

- ``oracle``: the cheapest learner that reaches the target, at full size (the limit).
- ``random``: the learners in a random order, each at full size.
- ``topk_low_fidelity``: every learner at a small size (the recorded anchor nearest 1/16 of
  the largest), then the best :data:`TOP_K` at full size, then the rest in the same order.
- ``average_rank``: a ranking meta-learned on the fold's training data sets (the mean rank
  of each learner's accuracy / train_time^:data:`TIME_EXPONENT` at their largest anchor), run
  in that order at full size.
- ``hyperband``: Optuna's TPE sampler with its ``HyperbandPruner`` (reduction factor 3) over
  training sizes ``top / 3^k`` (:meth:`LcdbProblem.ladder`); each rung is a fit of its own.
- ``ax``: ax-platform's default generation strategy (its ``Client``) over the learners at
  full size, maximising accuracy, cost-blind.

``TOP_K``, the small size and the time exponent were fixed before any run (the figures of
issue 14 and Egele et al. 2023), not tuned on the evaluated data sets. The library peers run
with their defaults and are left out, with a note, where the library is not installed.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from sciwm.bench.campaign.lcdb_replay import BudgetSpent, Fit, LcdbProblem, ReplayLab

#: Learners the low-fidelity screen sends to full size first.
TOP_K = 3
#: Exponent of train time in the meta-learned ranking's utility.
TIME_EXPONENT = 0.05
#: Trials at most per Optuna or Ax run (the cap ends a run long before).
MAX_TRIALS = 300

#: Full-size accuracies and train times of a fold's training data sets:
#: ``{data set: {learner: (score, train_time)}}``.
Meta = Mapping[str, Mapping[str, tuple[float, float]]]
PeerFn = Callable[[LcdbProblem, ReplayLab, int, Meta], None]


def run_oracle(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """The cheapest learner that reaches the target, at full size."""
    lab.fit(problem.oracle_learner, problem.top)


def run_random(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """The learners in a seeded random order at full size."""
    for learner in np.random.default_rng(seed).permutation(list(problem.learners)):
        lab.fit(str(learner), problem.top)


def run_topk_low_fidelity(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """Every learner at the small size, then the best at full size in that order."""
    low = problem.low_anchor()
    rng = np.random.default_rng(seed)
    screen = {}
    for learner in rng.permutation(list(problem.learners)):
        score = lab.fit(str(learner), low)
        screen[str(learner)] = -1.0 if math.isnan(score) else score
    for learner in sorted(screen, key=lambda k: -screen[k]):
        lab.fit(learner, problem.top)


def learner_ranking(meta: Meta, exponent: float = TIME_EXPONENT) -> list[str]:
    """Learners by mean rank of accuracy / train_time^exponent over the training data sets
    (a learner missing on a data set gets the worst rank there)."""
    learners = sorted({k for runs in meta.values() for k in runs})
    total = dict.fromkeys(learners, 0.0)
    for runs in meta.values():
        utility = {k: s / max(t, 1e-4) ** exponent for k, (s, t) in runs.items()}
        order = sorted(utility, key=lambda k: -utility[k])
        for k in learners:
            total[k] += order.index(k) + 1 if k in utility else len(learners)
    return sorted(learners, key=lambda k: (total[k], k))


def run_average_rank(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """The meta-learned ranking, at full size."""
    ranked = [k for k in learner_ranking(meta) if k in problem.curves]
    rest = [k for k in problem.learners if k not in ranked]
    for learner in ranked + rest:
        lab.fit(learner, problem.top)


def run_hyperband(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """Optuna's TPE + HyperbandPruner over the ladder of training sizes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ladder = problem.ladder(3)
    top_step = 3 ** (len(ladder) - 1)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=top_step, reduction_factor=3
        ),
    )

    def objective(trial: optuna.Trial) -> float:
        learner = trial.suggest_categorical("learner", list(problem.learners))
        score = math.nan
        for k, anchor in enumerate(ladder):
            score = lab.fit(learner, anchor)
            if math.isnan(score):
                raise optuna.TrialPruned
            trial.report(score, 3**k)
            if k < len(ladder) - 1 and trial.should_prune():
                raise optuna.TrialPruned
        return score

    study.optimize(objective, n_trials=MAX_TRIALS, catch=())


def run_ax(problem: LcdbProblem, lab: ReplayLab, seed: int, meta: Meta) -> None:
    """ax-platform's default generation strategy over the learners at full size."""
    from ax.api.client import Client
    from ax.api.configs import ChoiceParameterConfig
    from ax.utils.common.logger import set_ax_logger_levels

    set_ax_logger_levels(logging.ERROR)
    client = Client(random_seed=seed)
    client.configure_experiment(
        parameters=[
            ChoiceParameterConfig(
                name="learner",
                values=list(problem.learners),
                parameter_type="str",
                is_ordered=False,
            )
        ],
        name=f"{problem.name}-ax-{seed}",
    )
    client.configure_optimization(objective="accuracy")
    for _ in range(MAX_TRIALS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = client.get_next_trials(max_trials=1)
        if not trials:
            return
        for index, params in trials.items():
            try:
                score = lab.fit(str(params["learner"]), problem.top)
            except BudgetSpent:
                client.mark_trial_failed(index)
                raise
            if math.isnan(score):
                client.mark_trial_failed(index)
            else:
                client.complete_trial(index, raw_data={"accuracy": score})


#: Peers by name, with the module each needs (``None``: none beyond sciwm's own).
PEERS: dict[str, tuple[PeerFn, str | None]] = {
    "oracle": (run_oracle, None),
    "random": (run_random, None),
    "topk_low_fidelity": (run_topk_low_fidelity, None),
    "hyperband": (run_hyperband, "optuna"),
    "ax": (run_ax, "ax"),
    "average_rank": (run_average_rank, None),
}
#: Peers that were considered and are not run, with the reason (measured here).
LEFT_OUT: dict[str, str] = {
    "smac": (
        "smac 2.4.0 installs as a pure wheel (without pyrfr), but importing it fails: its "
        "random forest imports sklearn.tree._tree.DTYPE, which scikit-learn 1.9.1 (the "
        "pinned version) no longer has"
    ),
}


def available(peer: str) -> bool:
    """Whether a peer's library is installed."""
    module = PEERS[peer][1]
    return module is None or importlib.util.find_spec(module) is not None


def run_peer(
    peer: str, problem: LcdbProblem, seed: int, cap: float, meta: Meta
) -> tuple[list[Fit], str]:
    """Run one peer until it reaches the target, spends ``cap`` or runs out of proposals.

    Returns:
        The fits it paid for, in order, and why it ended.
    """
    lab = ReplayLab(problem, cap)
    try:
        PEERS[peer][0](problem, lab, seed, meta)
        reason = "no more proposals"
    except BudgetSpent:
        reached = any(f.anchor == problem.top and f.score >= problem.target for f in lab.fits)
        reason = "target reached" if reached else "budget spent"
    return lab.fits, reason


def training_meta(problems: Sequence[LcdbProblem]) -> dict[str, dict[str, tuple[float, float]]]:
    """:data:`Meta` of some data sets (their full-size results)."""
    return {p.dataset: p.full() for p in problems}


__all__ = [
    "LEFT_OUT",
    "PEERS",
    "TIME_EXPONENT",
    "TOP_K",
    "available",
    "learner_ranking",
    "run_peer",
    "training_meta",
]
