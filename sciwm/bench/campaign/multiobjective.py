"""Multi-objective campaign benchmark: real cost to reach 95% of the best known hypervolume.

Run by ``sciwm bench campaign`` next to the single-objective problems (problem names
``mo:...``; ``--problems mo`` runs only these). Problems: :mod:`~sciwm.bench.campaign.mo_problems`
(BraninCurrin with the cost surface; LCDB replay, test accuracy up and train time down, on
held-out data sets). Methods, side by side with the same seeds, budgets and experiment cap:

- ``sciwm``: the product. A campaign file with two ``[[objectives]]`` (each with the problem's
  reference point as ``ref``), the ``gp`` world model and the shipped ``[scheduler]`` defaults
  (``ei_per_cost``: qLogNEHVI per unit of predicted cost), run by :class:`flows.loop.CampaignLoop`
  against the simulated lab or the replay connector with a SQLite MLflow record store.
- ``ax``: Ax's ``Client`` with its default generation strategy (Sobol, then its modular
  botorch model with qLogNEHVI), the same reference point as objective thresholds.
- ``optuna_nsga2``: Optuna's NSGA-II sampler, defaults (population 50).
- ``optuna_motpe``: Optuna's TPE sampler on the multi-objective study (MOTPE), defaults.
- ``random``: uniform random search.

Metrics, per problem and method (medians over seeds; quartiles ``_q25``/``_q75``):
``cost_to_hv95``, the real cost spent (failures included) until the hypervolume of the results
so far reaches 95% of the best known (a run that does not get there within its budget or the
experiment cap counts as infinite: the median is reported only when at least half the seeds
got there, else ``null`` with ``censored``); ``hv_at_budget``, the hypervolume reached within
10%, 25%, 50% and 100% of the budget, as a fraction of the best known (``budget_fraction``);
``ratio_to_sciwm``, a peer's median ``cost_to_hv95`` over sciwm's (a lower bound where the
peer's is censored). The target: sciwm's median below every peer's (``target_met``, criterion
``below_every_peer``).
"""

from __future__ import annotations

import logging
import math
import time
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sciwm.bench.campaign.mo_problems import MOBenchProblem, random_point

#: The compared methods, sciwm first.
MO_METHODS = ("sciwm", "ax", "optuna_nsga2", "optuna_motpe", "random")
#: Fractions of the budget at which ``hv_at_budget`` is reported.
BUDGET_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
#: Share of the best known hypervolume ``cost_to_hv95`` waits for.
HV_SHARE = 0.95
#: Experiments per run at most (every method), full and ``--quick``.
MAX_EXPERIMENTS, MAX_EXPERIMENTS_QUICK = 50, 40
#: Held-out LCDB data sets, full and ``--quick``.
N_LCDB, N_LCDB_QUICK = 2, 1


@dataclass
class MORun:
    """One run: the cost and objective values of every finished experiment, in order.

    Attributes:
        problem: Problem name.
        method: Method name.
        seed: Seed.
        cap: Budget.
        costs: Cost of each finished experiment.
        outcomes: Objective values of each (``None`` for a failure).
        wall_s: Wall time of the run.
    """

    problem: str
    method: str
    seed: int
    cap: float
    costs: list[float] = field(default_factory=list)
    outcomes: list[list[float] | None] = field(default_factory=list)
    wall_s: float = 0.0

    def trace(self, problem: MOBenchProblem) -> tuple[list[float], list[float]]:
        """``(cumulative cost, hypervolume so far)`` after each experiment within the cap."""
        spent, rows, xs, ys = 0.0, [], [], []
        for c, y in zip(self.costs, self.outcomes, strict=True):
            spent += c
            if spent > self.cap * (1 + 1e-9):
                break  # over the budget: arrived too late to count
            if y is not None:
                rows.append(y)
            xs.append(spent)
            ys.append(problem.hypervolume(rows) if rows else 0.0)
        return xs, ys

    def cost_to_hv(self, problem: MOBenchProblem, share: float = HV_SHARE) -> float:
        """Cost spent until the hypervolume reaches ``share`` of the best known (``inf``)."""
        for x, hv in zip(*self.trace(problem), strict=True):
            if hv >= share * problem.best_hv:
                return x
        return math.inf

    def hv_at(self, problem: MOBenchProblem, budget: float) -> float:
        """Hypervolume within ``budget``, as a fraction of the best known."""
        best = 0.0
        for x, hv in zip(*self.trace(problem), strict=True):
            if x <= budget * (1 + 1e-9):
                best = hv
        return best / problem.best_hv


class _Lab:
    """Evaluates a problem for a peer, recording each experiment into a :class:`MORun`."""

    def __init__(self, problem: MOBenchProblem, run: MORun, max_experiments: int) -> None:
        self.problem, self.run, self.max_experiments = problem, run, max_experiments
        self.spent = 0.0

    @property
    def done(self) -> bool:
        return self.spent >= self.run.cap or len(self.run.costs) >= self.max_experiments

    def __call__(self, params: dict[str, Any]) -> dict[str, float] | None:
        outcomes, cost = self.problem.evaluate(params)
        self.spent += cost
        self.run.costs.append(cost)
        self.run.outcomes.append(
            None if outcomes is None else [outcomes[n] for n in self.problem.objectives]
        )
        return outcomes


# -- methods ----------------------------------------------------------------------------------
def run_random(problem: MOBenchProblem, lab: _Lab, seed: int) -> None:
    """Uniform random search."""
    gen = torch.Generator().manual_seed(seed)
    space = problem.space()
    while not lab.done:
        lab(random_point(space, gen))


def _optuna(problem: MOBenchProblem, lab: _Lab, seed: int, sampler: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if m else "minimize" for m in problem.maximize]
    study = optuna.create_study(directions=directions, sampler=sampler)
    space = problem.space()
    while not lab.done:
        trial = study.ask()
        params: dict[str, Any] = {}
        for p in space.parameters:
            if p.kind == "categorical":
                params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            elif p.kind == "int":
                params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)  # type: ignore[arg-type]
            else:
                params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)  # type: ignore[arg-type]
        out = lab(params)
        if out is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, [out[n] for n in problem.objectives])


def run_optuna_nsga2(problem: MOBenchProblem, lab: _Lab, seed: int) -> None:
    """Optuna's NSGA-II sampler with its defaults."""
    import optuna

    _optuna(problem, lab, seed, optuna.samplers.NSGAIISampler(seed=seed))


def run_optuna_motpe(problem: MOBenchProblem, lab: _Lab, seed: int) -> None:
    """Optuna's TPE sampler on a multi-objective study (MOTPE) with its defaults."""
    import optuna

    _optuna(problem, lab, seed, optuna.samplers.TPESampler(seed=seed))


def run_ax(problem: MOBenchProblem, lab: _Lab, seed: int) -> None:
    """Ax's Client with its default strategy; the reference point as objective thresholds."""
    from ax.api.client import Client
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    for name in ("ax", "pyro"):
        logging.getLogger(name).setLevel(logging.ERROR)
    client = Client(random_seed=seed)
    params: list[Any] = []
    for p in problem.space().parameters:
        if p.kind == "categorical":
            params.append(ChoiceParameterConfig(p.name, [str(c) for c in p.choices], "str"))
        else:
            kind = "int" if p.kind == "int" else "float"
            scaling = "log" if p.log else "linear"
            params.append(RangeParameterConfig(p.name, (p.low, p.high), kind, scaling=scaling))  # type: ignore[arg-type]
    client.configure_experiment(parameters=params)
    objective = ", ".join(
        n if m else f"-{n}" for n, m in zip(problem.objectives, problem.maximize, strict=True)
    )
    thresholds = [
        f"{n} {'>=' if m else '<='} {r!r}"
        for n, m, r in zip(problem.objectives, problem.maximize, problem.ref, strict=True)
    ]
    client.configure_optimization(objective=objective, outcome_constraints=thresholds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while not lab.done:
            ((index, p),) = client.get_next_trials(max_trials=1).items()
            out = lab(dict(p))
            if out is None:
                client.mark_trial_failed(index)
            else:
                client.complete_trial(index, raw_data={n: out[n] for n in problem.objectives})


def run_sciwm(problem: MOBenchProblem, run: MORun, max_experiments: int, root: str) -> None:
    """The product: the campaign file through the loop behind ``sciwm campaign run``."""
    from sciwm.bench.campaign.product import TimedLoop
    from sciwm.bench.campaign.runner import process_store
    from sciwm.experiment import Status
    from sciwm.spec import parse_spec

    name = f"{problem.name.replace(':', '-')}-sciwm-{run.seed}"
    text = problem.campaign_file(name, run.seed, run.cap, max_experiments)
    spec = parse_spec(tomllib.loads(text), f"<sciwm on {problem.name}>")
    loop = TimedLoop(spec, text, process_store(root), Path(root) / "labs" / name)
    loop.run()
    for rec in loop.state.finished:
        obs = rec.observation
        assert obs is not None
        run.costs.append(obs.cost or 0.0)
        ok = obs.status is Status.COMPLETED and all(n in obs.outcomes for n in problem.objectives)
        run.outcomes.append([obs.outcomes[n] for n in problem.objectives] if ok else None)


PEERS: dict[str, Callable[[MOBenchProblem, _Lab, int], None]] = {
    "ax": run_ax,
    "optuna_nsga2": run_optuna_nsga2,
    "optuna_motpe": run_optuna_motpe,
    "random": run_random,
}

#: The library each peer needs.
NEEDS = {"ax": "ax", "optuna_nsga2": "optuna", "optuna_motpe": "optuna"}


def run_one(task: tuple[MOBenchProblem, str, int, float, int, str]) -> MORun:
    """Run ``(problem, method, seed, cap, max_experiments, root)`` on one torch thread."""
    problem, method, seed, cap, max_experiments, root = task
    torch.set_num_threads(1)
    run = MORun(problem.name, method, seed, cap)
    t0 = time.perf_counter()
    if method == "sciwm":
        run_sciwm(problem, run, max_experiments, root)
    else:
        PEERS[method](problem, _Lab(problem, run, max_experiments), seed)
    run.wall_s = time.perf_counter() - t0
    return run
