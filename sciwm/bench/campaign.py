"""Campaign benchmark: real cost spent to reach the optimum, sciwm vs cost-blind BO vs random.

Every method runs the same simulated lab, side by side in one run with the same seeds:

- ``sciwm``: the real sciwm parts in-process: :class:`surrogates.gp.GPWorldModel` refitted on
  every result, :class:`scheduler.agent.Agent` with the ``ei_per_cost`` acquisition (log
  qLogNEI minus predicted log cost), and :class:`scheduler.gate.DispatchGate` holding the
  run's budget cap (an experiment that would overrun its reservation is stopped at it, as a
  connector would, and its result is lost).
- ``gp_cost_blind``: a plain botorch loop: the same scrambled Sobol initial design (same
  seed, same size), the same GP (``SingleTaskGP``, Matern-5/2 ARD, ``Standardize``, fitted
  with ``fit_gpytorch_mll``), ``qLogNoisyExpectedImprovement`` maximised by ``optimize_acqf``
  with the same restarts and raw samples. It ignores cost.
- ``random``: uniform random search.
- ``sciwm_ei``: sciwm's own loop with the cost term switched off (acquisition ``"ei"``): it
  separates the effect of the cost term from everything else that differs between sciwm and
  the plain botorch loop (optimiser seeds, duplicate checks, the posterior adapter), i.e. it
  shows how far two cost-blind implementations of the same method differ by chance.

Problems are botorch test functions (minimised), with a cost per experiment that varies
smoothly over the space. With ``u`` the point in the unit cube (``u_1`` the first coordinate,
``u_d`` the last)::

    cost(u) = 10 ** ((u_1 + u_d) / 2)        # in [1, 10]: log-linear, spans exactly 10x

The cheapest corner is ``u_1 = u_d = 0``, the dearest ``u_1 = u_d = 1``; the median cost over
the space is ``10 ** 0.5 = 3.16`` and the mean about 3.5. Where the optima lie relative to
cost (nothing was chosen to make them cheap):

- ``branin`` (2-D, x1 in [-5, 10], x2 in [0, 15]): the three global minima (value 0.3979) cost
  2.96 at (-pi, 12.275), 2.22 at (pi, 2.275) and 3.66 at (9.425, 2.475), all near the median.
- ``hartmann6`` (6-D, [0, 1]^6): the global minimum (-3.3224) at u_1 = 0.202, u_6 = 0.657
  costs 2.69 (near the median); the second-best local minimum (-3.2032), a trap for BO, costs
  1.66, i.e. the trap is cheaper than the optimum.

``cost_to_target`` is the real cost spent (initial design included) up to and including the
first experiment whose value lies within 1% of the function's value range of the optimum:
``f(x) <= f* + 0.01 * (f_max - f*)``, with ``f_max`` the largest value over the domain
(found numerically; constants below). A run that does not get there within the cap is
"not reached": its cost counts as infinite for the median and the quartiles, so a median
over seeds is reported only when at least half the seeds reached the target; otherwise the
value is ``null`` and the row says ``censored``. ``ratio_to_sciwm`` is a baseline's median
over sciwm's; when the baseline's median is censored it is the lower bound ``cap / sciwm's
median`` (``bound: "lower"``).

How hard the targets are: 5.8% of Branin's domain lies within its target (2 M uniform
samples), so random search's median is about 12 experiments (geometric law, p = 0.058),
some 30-40 in cost; a model-based method spends 5 experiments on its initial design alone, so
on Branin no method that has to learn where the optimum is can be 5x cheaper than random
search. None of 2 M uniform samples of Hartmann6 lies within its target.

Random search costs nothing to simulate, so it runs with a cap ``random_cap_factor`` (1000)
times larger than the model-based methods': its median is then measured rather than censored
at the common cap, which can only favour it, and its rows carry the cap it ran with.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from sciwm.bench.common import Row, env_info, format_table, make_result, save_result

SUITE = "campaign"
METHODS = ("sciwm", "gp_cost_blind", "random", "sciwm_ei")
OBJECTIVE = "f"

#: Cheapest and dearest cost of the cost surface (10x apart).
COST_MIN = 1.0
COST_SPAN = 10.0


@dataclass(frozen=True)
class Problem:
    """A botorch test function with a cost surface and a budget cap per run.

    Attributes:
        name: Problem name in the result rows.
        function: Name of the botorch test function class.
        dim: Dimension.
        f_max: Largest value over the domain (found numerically: 2 M uniform samples, then
            L-BFGS-B from the best 20).
        cap: Budget per run (cost units) in the full benchmark.
        cap_quick: Budget per run with ``--quick``.
    """

    name: str
    function: str
    dim: int
    f_max: float
    cap: float
    cap_quick: float

    def make(self) -> Any:
        """The botorch test function (minimisation, no noise)."""
        from botorch import test_functions

        cls = getattr(test_functions, self.function)
        return cls(dim=self.dim) if self.function == "Hartmann" else cls()

    def space(self) -> Any:
        """The search space: one float parameter per coordinate, with the function's bounds."""
        from sciwm.space import Parameter, SearchSpace

        bounds = self.make().bounds
        return SearchSpace(
            tuple(
                Parameter(f"x{i + 1}", "float", float(bounds[0, i]), float(bounds[1, i]))
                for i in range(self.dim)
            )
        )

    def target(self) -> float:
        """Threshold of ``cost_to_target``: within 1% of the value range of the optimum."""
        f_star = float(self.make().optimal_value)
        return f_star + 0.01 * (self.f_max - f_star)


PROBLEMS = (
    Problem("branin", "Branin", 2, f_max=308.129096, cap=150.0, cap_quick=100.0),
    Problem("hartmann6", "Hartmann", 6, f_max=-2.1294e-07, cap=200.0, cap_quick=120.0),
)


@dataclass(frozen=True)
class Settings:
    """Settings shared by the model-based methods.

    Attributes:
        seeds: Seeds per problem and method (0 .. seeds-1).
        quick: Whether the ``--quick`` caps are used.
        initial_experiments: Size of the Sobol initial design (sciwm and gp_cost_blind).
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples of the acquisition optimiser.
        cost_exponent: Weight of the cost term of sciwm's acquisition.
        max_experiments: Safety stop of one model-based run.
        random_cap_factor: Random search's cap, as a multiple of the problem's cap.
        workers: Processes running seeds in parallel, one torch thread each (default: one
            per usable CPU core).
    """

    seeds: int = 10
    quick: bool = False
    initial_experiments: int = 5
    num_restarts: int = 4
    raw_samples: int = 128
    cost_exponent: float = 1.0
    max_experiments: int = 400
    random_cap_factor: float = 1000.0
    workers: int | None = None


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


# -- the simulated lab -----------------------------------------------------------------------
def cost_of(u: torch.Tensor) -> torch.Tensor:
    """Cost of experiments at unit-cube points.

    Args:
        u: A ``n x d`` tensor in [0, 1].

    Returns:
        A ``n`` tensor: ``COST_MIN * COST_SPAN ** ((u_1 + u_d) / 2)``.
    """
    return COST_MIN * COST_SPAN ** ((u[..., 0] + u[..., -1]) / 2)


def _to_native(fn: Any, u: torch.Tensor) -> torch.Tensor:
    lb, ub = fn.bounds[0].to(u), fn.bounds[1].to(u)
    return lb + u * (ub - lb)


class _Tracker:
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


# -- the three methods -----------------------------------------------------------------------
def run_sciwm(
    problem: Problem, seed: int, cap: float, s: Settings, acquisition: str = "ei_per_cost"
) -> RunResult:
    """One sciwm campaign: GPWorldModel + Agent(ei_per_cost) + DispatchGate(cap)."""
    from scheduler.agent import Agent
    from scheduler.gate import DispatchGate
    from sciwm.errors import WorldModelError
    from sciwm.experiment import Experiment, Observation, Status
    from surrogates.gp import GPWorldModel

    t0 = time.perf_counter()
    fn, space = problem.make(), problem.space()
    agent = Agent(
        space,
        OBJECTIVE,
        maximize=False,
        acquisition=acquisition,
        initial_experiments=s.initial_experiments,
        seed=seed,
        num_restarts=s.num_restarts,
        raw_samples=s.raw_samples,
        cost_exponent=s.cost_exponent,
    )
    gate = DispatchGate(cap)
    track = _Tracker(cap, problem.target())
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
            value = float(fn(_to_native(fn, u))[0])
            obs = Observation(exp.id, Status.COMPLETED, {OBJECTIVE: value}, cost=true_cost)
        experiments.append(exp)
        observations.append(obs)
        if track.record(float(obs.cost), value):
            break
    method = "sciwm" if acquisition == "ei_per_cost" else f"sciwm_{acquisition}"
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
    track = _Tracker(cap, problem.target())
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
        value = float(fn(_to_native(fn, x))[0])
        X = torch.cat([X, x])
        Y = torch.cat([Y, torch.tensor([[value]], dtype=torch.double)])
        if track.record(float(cost_of(x)[0]), value):
            break
    return track.result(problem.name, "gp_cost_blind", seed, time.perf_counter() - t0)


def run_random(problem: Problem, seed: int, cap: float, s: Settings) -> RunResult:
    """Uniform random search until the target or the cap."""
    t0 = time.perf_counter()
    fn = problem.make()
    track = _Tracker(cap, problem.target())
    gen = torch.Generator().manual_seed(seed)
    done = False
    while not done:
        U = torch.rand(1024, problem.dim, generator=gen, dtype=torch.double)
        values = fn(_to_native(fn, U)).tolist()
        costs = cost_of(U).tolist()
        for c, v in zip(costs, values, strict=True):
            if track.record(c, v):
                done = True
                break
    return track.result(problem.name, "random", seed, time.perf_counter() - t0)


def _usable_cpus() -> int:
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


def _run_task(task: tuple[Problem, str, int, float, Settings]) -> RunResult:
    problem, method, seed, cap, settings = task
    torch.set_num_threads(1)
    return RUNNERS[method](problem, seed, cap, settings)


# -- summary ----------------------------------------------------------------------------------
def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile where ``inf`` (not reached) propagates as ``inf``."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return v[lo]
    if math.isinf(v[hi]):
        return math.inf
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def summarize(results: Sequence[RunResult], problems: Sequence[Problem]) -> list[Row]:
    """Tidy rows: per problem x method medians, quartiles, reached fraction, ratios."""
    rows: list[Row] = []
    medians: dict[tuple[str, str], float] = {}
    caps: dict[tuple[str, str], float] = {}
    for problem in problems:
        for method in METHODS:
            runs = sorted(
                (r for r in results if r.problem == problem.name and r.method == method),
                key=lambda r: r.seed,
            )
            if not runs:
                continue
            cap = max(r.cap for r in runs)
            caps[(problem.name, method)] = cap
            costs = [r.cost_to_target for r in runs]
            reached = sum(math.isfinite(c) for c in costs)
            base = {"problem": problem.name, "method": method}
            qual = {"seeds": len(runs), "reached": reached, "cap": cap}
            med = _quantile(costs, 0.5)
            medians[(problem.name, method)] = med
            for metric, q in (
                ("cost_to_target", 0.5),
                ("cost_to_target_q25", 0.25),
                ("cost_to_target_q75", 0.75),
            ):
                val = _quantile(costs, q)
                rows.append(
                    {**base, "metric": metric, "value": val, **qual, "censored": math.isinf(val)}
                )
            rows.append(
                {**base, "metric": "reached_fraction", "value": reached / len(runs), **qual}
            )
            n_exp = [float(r.experiments_to_target or math.inf) for r in runs]
            val = _quantile(n_exp, 0.5)
            rows.append(
                {
                    **base,
                    "metric": "experiments_to_target",
                    "value": val,
                    **qual,
                    "censored": math.isinf(val),
                }
            )
            rows.append(
                {
                    **base,
                    "metric": "wall_s_per_run",
                    "value": sum(r.wall_s for r in runs) / len(runs),
                    "seeds": len(runs),
                }
            )
            for r in runs:
                rows.append(
                    {
                        **base,
                        "metric": "cost_to_target_run",
                        "value": r.cost_to_target,
                        "seed": r.seed,
                        "cap": r.cap,
                        "experiments": r.experiments,
                        "spent": r.spent,
                        "best": r.best,
                        "reached": math.isfinite(r.cost_to_target),
                    }
                )
        ref = medians.get((problem.name, "sciwm"))
        for method in METHODS[1:]:
            other = medians.get((problem.name, method))
            if ref is None or other is None:
                continue
            if math.isfinite(ref) and math.isfinite(other):
                ratio, bound = other / ref, "exact"
            elif math.isfinite(ref):
                ratio, bound = caps[(problem.name, method)] / ref, "lower"
            elif math.isfinite(other):
                ratio, bound = other / caps[(problem.name, "sciwm")], "upper"
            else:
                ratio, bound = math.nan, "none"
            rows.append(
                {
                    "problem": problem.name,
                    "method": method,
                    "metric": "ratio_to_sciwm",
                    "value": ratio,
                    "bound": bound,
                }
            )
    return rows


def target_check(rows: Sequence[Row], problems: Sequence[Problem]) -> list[Row]:
    """Rows ``target_met`` (1/0) per problem for the issue's target.

    Target: sciwm's median cost_to_target is below gp_cost_blind's and at least 5x below
    random's.
    """
    out: list[Row] = []
    ratios = {(r["problem"], r["method"]): r for r in rows if r["metric"] == "ratio_to_sciwm"}
    for problem in problems:
        gp = ratios.get((problem.name, "gp_cost_blind"))
        rnd = ratios.get((problem.name, "random"))
        ok_gp = gp is not None and gp["bound"] in ("exact", "lower") and gp["value"] > 1.0
        ok_rnd = rnd is not None and rnd["bound"] in ("exact", "lower") and rnd["value"] >= 5.0
        for criterion, ok in (("below_gp_cost_blind", ok_gp), ("5x_below_random", ok_rnd)):
            out.append(
                {
                    "problem": problem.name,
                    "method": "sciwm",
                    "metric": "target_met",
                    "value": int(ok),
                    "criterion": criterion,
                }
            )
    return out


def _cell(row: Row) -> str:
    value = row["value"]
    if row["metric"] in ("cost_to_target", "cost_to_target_q25", "cost_to_target_q75"):
        if value is None or (isinstance(value, float) and math.isinf(value)):
            return f">{row['cap']:g}"
        return f"{value:.1f}"
    if row["metric"] == "ratio_to_sciwm":
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        return {"lower": ">=", "upper": "<=", "exact": ""}.get(row["bound"], "") + f"{value:.2f}"
    if row["metric"] == "reached_fraction":
        return f"{value:.2f}"
    if row["metric"] == "experiments_to_target":
        return "-" if value is None or math.isinf(value) else f"{value:.1f}"
    if row["metric"] == "wall_s_per_run":
        return f"{value:.1f}"
    return str(value)


TABLE_METRICS = (
    "cost_to_target",
    "cost_to_target_q25",
    "cost_to_target_q75",
    "reached_fraction",
    "ratio_to_sciwm",
    "experiments_to_target",
    "wall_s_per_run",
)


# -- entry point ------------------------------------------------------------------------------
def run(
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    progress: bool = True,
    *,
    problems: Sequence[str] | None = None,
    caps: dict[str, float] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the campaign benchmark and print its table.

    Args:
        quick: 3 seeds and smaller caps (a few minutes on 2 cores).
        seeds: Seeds per problem and method (default 10, or 3 with ``quick``).
        out: Where to write the result JSON (optional).
        progress: Print one line per finished run to standard error.
        problems: Problem names to run (default: all).
        caps: Budget cap per problem name, overriding the defaults.
        settings: Optimiser and method settings (default :class:`Settings`).

    Returns:
        The result dict ``{"suite", "rows", "config", "env"}``.
    """
    s = settings or Settings()
    s = replace(s, quick=quick, seeds=seeds if seeds is not None else (3 if quick else s.seeds))
    chosen = [p for p in PROBLEMS if problems is None or p.name in problems]
    if not chosen:
        raise ValueError(f"no such problem(s) {problems}; choose from {[p.name for p in PROBLEMS]}")
    cap_of = {p.name: (p.cap_quick if quick else p.cap) for p in chosen}
    cap_of.update(caps or {})
    # Longest runs first so that the parallel workers finish together.
    factor = {"random": s.random_cap_factor}
    tasks = [
        (p, m, seed, cap_of[p.name] * factor.get(m, 1.0), s)
        for m in ("sciwm", "sciwm_ei", "gp_cost_blind", "random")
        for p in sorted(chosen, key=lambda p: -p.dim)
        for seed in range(s.seeds)
    ]
    t0 = time.perf_counter()
    results: list[RunResult] = []
    workers = max(1, s.workers if s.workers is not None else _usable_cpus())

    def _done(r: RunResult) -> None:
        results.append(r)
        if progress:
            got = f"{r.cost_to_target:.1f}" if math.isfinite(r.cost_to_target) else "not reached"
            print(
                f"[{len(results)}/{len(tasks)} {time.perf_counter() - t0:6.0f}s] "
                f"{r.problem:10s} {r.method:14s} seed {r.seed:2d}: cost_to_target {got} "
                f"({r.experiments} experiments, {r.wall_s:.1f}s)",
                file=sys.stderr,
                flush=True,
            )

    threads = torch.get_num_threads()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for r in pool.imap_unordered(_run_task, tasks):
                _done(r)
    else:
        try:
            for task in tasks:
                _done(_run_task(task))
        finally:
            torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    rows = summarize(results, chosen)
    rows += target_check(rows, chosen)
    config = {
        **asdict(s),
        "problems": [
            {**asdict(p), "cap_used": cap_of[p.name], "target": p.target()} for p in chosen
        ],
        "methods": list(METHODS),
        "cost": "cost(u) = 10 ** ((u_1 + u_d) / 2), u in the unit cube; spans 1..10",
        "target": "f <= f* + 0.01 * (f_max - f*)",
        "wall_s_total": wall,
    }
    env = env_info()
    env["torch_threads"] = 1 if workers > 1 else threads
    env["workers"] = workers
    result = make_result(SUITE, rows, config, env)
    if progress:
        print(file=sys.stderr)
    print(
        format_table(
            [r for r in result["rows"] if r["metric"] in TABLE_METRICS],
            TABLE_METRICS,
            METHODS,
            cell=_cell,
        )
    )
    for r in result["rows"]:
        if r["metric"] == "target_met":
            word = "met" if r["value"] else "NOT met"
            print(f"target {r['criterion']} on {r['problem']}: {word}")
    print(f"total wall time {wall:.0f} s with {workers} worker(s)")
    if out is not None:
        save_result(out, result)
    return result
