"""The baselines: simple loops written for the benchmark, not parts of the product.

- :func:`run_gp_cost_blind`: a plain botorch loop that ignores cost: a scrambled Sobol initial
  design, then ``qLogNoisyExpectedImprovement`` on a ``SingleTaskGP`` (botorch's default
  kernel and priors, ``Standardize``, fitted with ``fit_gpytorch_mll``), maximised by
  ``optimize_acqf``; one experiment at a time, no budget gate. Its design size and optimiser
  effort are those the product's campaigns run with, so the two differ in what the product
  adds (the cost term, restarts, the gate, duplicate checks), not in optimiser effort.
- :func:`run_optuna_tpe`: Optuna's TPE sampler with its defaults (10 random startup trials,
  then the tree-structured Parzen estimator), one trial at a time, cost-blind: a widely used
  library's optimiser as a peer. Needs ``optuna`` (``pip install 'sciwm[bench]'``).
- :func:`run_random`: uniform random search.

Both evaluate the problem directly (the simulated lab's numbers without the connector or a
record store) and stop at the first result within the target or when the cap is spent.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings

import torch

from scheduler.agent import Agent
from sciwm.bench.campaign.methods import RunResult, Settings
from sciwm.spec import SchedulerSpec
from sciwm.testing.problems import Problem, cost_of, to_native


class Tracker:
    """Cost accounting of one run: when the target is first reached, within the cap."""

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

    def result(
        self, problem: str, method: str, seed: int, wall: float, **times: float
    ) -> RunResult:
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
            **times,
        )


def product_effort(s: Settings) -> tuple[int, int, int]:
    """``(initial_experiments, num_restarts, raw_samples)`` the product's campaigns run with.

    A setting the campaign file leaves out takes the spec's default, or the agent's where the
    spec leaves it to the agent.
    """
    sched = SchedulerSpec.model_validate(dict(s.scheduler))
    agent = inspect.signature(Agent).parameters

    def pick(name: str) -> int:
        value = getattr(sched, name, None)
        return int(agent[name].default if value is None else value)

    return pick("initial_experiments"), pick("num_restarts"), pick("raw_samples")


def run_gp_cost_blind(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """A plain botorch qLogNEI loop on a SingleTaskGP that ignores cost (see the module doc)."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood

    t0 = time.perf_counter()
    initial, num_restarts, raw_samples = product_effort(s)
    fit_s = propose_s = 0.0
    fn = problem.make()
    track = Tracker(cap, problem.target())
    bounds = torch.stack([torch.zeros(problem.dim), torch.ones(problem.dim)]).double()
    sobol = torch.quasirandom.SobolEngine(problem.dim, scramble=True, seed=seed)
    X = torch.empty(0, problem.dim, dtype=torch.double)
    Y = torch.empty(0, 1, dtype=torch.double)
    while track.n < s.max_experiments:
        if len(X) < initial:
            x = sobol.draw(1, dtype=torch.double)
        else:
            t_fit = time.perf_counter()
            gp = SingleTaskGP(X, -Y, outcome_transform=Standardize(m=1))  # maximise -f
            mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
            with torch.random.fork_rng(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.manual_seed(0)
                fit_gpytorch_mll(mll)
                t_propose = time.perf_counter()
                fit_s += t_propose - t_fit
                step = seed * 1_000_003 + len(X)
                torch.manual_seed(step)
                acqf = qLogNoisyExpectedImprovement(
                    gp,
                    X_baseline=X,
                    sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=step),
                )
                x, _ = optimize_acqf(
                    acqf, bounds, q=1, num_restarts=num_restarts, raw_samples=raw_samples
                )
            x = x.detach()
            propose_s += time.perf_counter() - t_propose
        value = float(fn(to_native(fn, x))[0])
        X = torch.cat([X, x])
        Y = torch.cat([Y, torch.tensor([[value]], dtype=torch.double)])
        if track.record(float(cost_of(x)[0]), value):
            break
    wall = time.perf_counter() - t0
    return track.result(problem.name, "gp_cost_blind", seed, wall, fit_s=fit_s, propose_s=propose_s)


def optuna_available() -> bool:
    """Whether Optuna can be imported (the ``optuna_tpe`` baseline needs it)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def run_optuna_tpe(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """Optuna's TPE sampler (defaults, seeded), one trial at a time, ignoring cost."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    fn = problem.make()
    track = Tracker(cap, problem.target())
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    propose_s = 0.0
    while track.n < s.max_experiments:
        t_ask = time.perf_counter()
        trial = study.ask()
        u = torch.tensor(
            [[trial.suggest_float(f"u{i + 1}", 0.0, 1.0) for i in range(problem.dim)]],
            dtype=torch.double,
        )
        propose_s += time.perf_counter() - t_ask
        value = float(fn(to_native(fn, u))[0])
        study.tell(trial, value)
        if track.record(float(cost_of(u)[0]), value):
            break
    wall = time.perf_counter() - t0
    return track.result(problem.name, "optuna_tpe", seed, wall, propose_s=propose_s)


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
