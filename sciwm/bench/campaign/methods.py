"""The compared methods: sciwm's loop, a plain cost-blind botorch loop, random search.

Each ``run_*`` function runs one method on one problem with one seed against the simulated
lab of :mod:`sciwm.bench.campaign.problems`, and returns a :class:`RunResult`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from sciwm.bench.campaign.problems import OBJECTIVE, Problem, cost_of, to_native

METHODS = ("sciwm", "gp_cost_blind", "random", "sciwm_ei")


@dataclass(frozen=True)
class Settings:
    """Settings shared by the model-based methods.

    Attributes:
        seeds: Seeds per problem and method (``seed_offset .. seed_offset + seeds - 1``).
        seed_offset: First seed; tune on seeds apart from the reported ones (e.g. 1000).
        quick: Whether the ``--quick`` caps are used.
        initial_experiments: Size of the Sobol initial design (sciwm and gp_cost_blind).
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples of the acquisition optimiser.
        acquisition: sciwm's acquisition (an :class:`scheduler.agent.Agent` name).
        cost_exponent: Weight of the cost term of sciwm's acquisition (the Agent's default).
        gittins_lambda: Cost weight of the ``"gittins"`` acquisition (``None``: adaptive).
        restart_after: sciwm's restart after a stall (the Agent's ``restart_after``).
        max_experiments: Safety stop of one model-based run.
        random_cap_factor: Random search's cap, as a multiple of the problem's cap.
        workers: Processes running seeds in parallel, one torch thread each (default: one
            per usable CPU core).
        methods: Methods to run (default: all of :data:`METHODS`).
    """

    seeds: int = 10
    seed_offset: int = 0
    quick: bool = False
    initial_experiments: int = 5
    num_restarts: int = 4
    raw_samples: int = 128
    acquisition: str = "ei_per_cost"
    cost_exponent: float = 0.5  # scheduler.agent.DEFAULT_COST_EXPONENT
    gittins_lambda: float | None = None
    restart_after: int = 10  # scheduler.agent.DEFAULT_RESTART_AFTER
    max_experiments: int = 400
    random_cap_factor: float = 1000.0
    workers: int | None = None
    methods: tuple[str, ...] = METHODS


@dataclass(frozen=True)
class RunResult:
    """One run of one method on one problem with one seed."""

    problem: str
    method: str
    seed: int
    cap: float
    cost_to_target: float  # inf when not reached within the cap
    experiments_to_target: int | None
    experiments: int
    spent: float
    best: float
    wall_s: float


class Tracker:
    """Real cost accounting of one run: when the target is first reached, within the cap."""

    def __init__(self, cap: float, target: float) -> None:
        self.cap, self.target = cap, target
        self.spent = 0.0
        self.n = 0
        self.best = math.inf
        self.reached_at: float | None = None
        self.reached_n: int | None = None

    def record(self, cost: float, value: float | None) -> bool:
        """Account one finished experiment; returns whether the run should stop."""
        self.spent += cost
        self.n += 1
        if self.spent > self.cap * (1 + 1e-9):
            return True  # over the cap: this result arrived too late to count
        if value is not None:
            self.best = min(self.best, value)
            if value <= self.target:
                self.reached_at, self.reached_n = self.spent, self.n
                return True
        return self.spent >= self.cap

    def result(self, problem: str, method: str, seed: int, wall: float) -> RunResult:
        """The run's :class:`RunResult` (``wall``: its wall time in seconds)."""
        return RunResult(
            problem,
            method,
            seed,
            self.cap,
            self.reached_at if self.reached_at is not None else math.inf,
            self.reached_n,
            self.n,
            self.spent,
            self.best,
            wall,
        )


# -- the methods -----------------------------------------------------------------------
def run_sciwm(
    problem: Problem, seed: int, cap: float, s: Settings, acquisition: str | None = None
) -> RunResult:
    """One sciwm campaign: GPWorldModel + Agent(``s.acquisition``) + DispatchGate(cap)."""
    from scheduler.agent import Agent
    from scheduler.gate import DispatchGate
    from sciwm.errors import WorldModelError
    from sciwm.experiment import Experiment, Observation, Status
    from surrogates.gp import GPWorldModel

    t0 = time.perf_counter()
    method = "sciwm" if acquisition is None else f"sciwm_{acquisition}"
    fn, space = problem.make(), problem.space()
    agent = Agent(
        space,
        OBJECTIVE,
        maximize=False,
        acquisition=acquisition or s.acquisition,
        initial_experiments=s.initial_experiments,
        seed=seed,
        num_restarts=s.num_restarts,
        raw_samples=s.raw_samples,
        cost_exponent=s.cost_exponent,
        gittins_lambda=s.gittins_lambda,
        restart_after=s.restart_after,
    )
    gate = DispatchGate(cap)
    track = Tracker(cap, problem.target())
    experiments: list[Any] = []
    observations: list[Any] = []
    model = None
    while track.n < s.max_experiments:
        n_ok = sum(o.status is Status.COMPLETED for o in observations)
        if n_ok >= 2:
            candidate_model = GPWorldModel(space, [OBJECTIVE])
            try:
                candidate_model.fit(experiments, observations)
                model = candidate_model
            except WorldModelError:
                pass  # keep the previous fit
        cands = agent.propose(model, experiments, observations, [], 1)
        decision = gate.decide(cands, spent=track.spent, running_reserved=[], capacity=1)[0]
        if not decision.dispatch:
            break
        exp = Experiment.create(
            f"{problem.name}-{seed}", len(experiments), cands[0].parameters, decision.max_cost
        )
        u = space.encode([exp.parameters])
        true_cost = float(cost_of(u)[0])
        assert decision.max_cost is not None
        if true_cost > decision.max_cost:  # the connector stops it at its cap
            obs = Observation.failed(exp.id, "stopped at its cost cap", cost=decision.max_cost)
            value = None
        else:
            value = float(fn(to_native(fn, u))[0])
            obs = Observation(exp.id, Status.COMPLETED, {OBJECTIVE: value}, cost=true_cost)
        experiments.append(exp)
        observations.append(obs)
        if track.record(float(obs.cost), value):
            break
    return track.result(problem.name, method, seed, time.perf_counter() - t0)


def run_sciwm_ei(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """sciwm's loop with the cost-blind ``"ei"`` acquisition (a control)."""
    return run_sciwm(problem, seed, cap, s, acquisition="ei")


def run_gp_cost_blind(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """A plain botorch qLogNEI loop on a SingleTaskGP, same initial design, ignoring cost."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood

    t0 = time.perf_counter()
    fn = problem.make()
    track = Tracker(cap, problem.target())
    bounds = torch.stack([torch.zeros(problem.dim), torch.ones(problem.dim)]).double()
    sobol = torch.quasirandom.SobolEngine(problem.dim, scramble=True, seed=seed)
    X = torch.empty(0, problem.dim, dtype=torch.double)
    Y = torch.empty(0, 1, dtype=torch.double)
    while track.n < s.max_experiments:
        if len(X) < s.initial_experiments:
            x = sobol.draw(1, dtype=torch.double)
        else:
            gp = SingleTaskGP(X, -Y, outcome_transform=Standardize(m=1))  # maximise -f
            mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
            with torch.random.fork_rng(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.manual_seed(0)
                fit_gpytorch_mll(mll)
                step = seed * 1_000_003 + len(X)
                torch.manual_seed(step)
                acqf = qLogNoisyExpectedImprovement(
                    gp,
                    X_baseline=X,
                    sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=step),
                )
                x, _ = optimize_acqf(
                    acqf, bounds, q=1, num_restarts=s.num_restarts, raw_samples=s.raw_samples
                )
            x = x.detach()
        value = float(fn(to_native(fn, x))[0])
        X = torch.cat([X, x])
        Y = torch.cat([Y, torch.tensor([[value]], dtype=torch.double)])
        if track.record(float(cost_of(x)[0]), value):
            break
    return track.result(problem.name, "gp_cost_blind", seed, time.perf_counter() - t0)


def run_random(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """Uniform random search until the target or the cap."""
    t0 = time.perf_counter()
    fn = problem.make()
    track = Tracker(cap, problem.target())
    gen = torch.Generator().manual_seed(seed)
    done = False
    while not done:
        U = torch.rand(1024, problem.dim, generator=gen, dtype=torch.double)
        values = fn(to_native(fn, U)).tolist()
        costs = cost_of(U).tolist()
        for c, v in zip(costs, values, strict=True):
            if track.record(c, v):
                done = True
                break
    return track.result(problem.name, "random", seed, time.perf_counter() - t0)


def usable_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


RUNNERS = {
    "sciwm": run_sciwm,
    "gp_cost_blind": run_gp_cost_blind,
    "random": run_random,
    "sciwm_ei": run_sciwm_ei,
}


def run_task(task: tuple[Problem, str, int, float, Settings]) -> RunResult:
    """Run ``(problem, method, seed, cap, settings)`` with one torch thread (a pool's task)."""
    problem, method, seed, cap, settings = task
    torch.set_num_threads(1)
    return RUNNERS[method](problem, seed, cap, settings)
