"""The product's methods: a campaign file per run, run by the loop behind ``sciwm campaign run``.

For each problem and seed the benchmark writes the campaign file a user would write for the
simulated lab (:func:`campaign_file`) and runs it through :class:`flows.loop.CampaignLoop`
with a SQLite MLflow record store: spec -> world model -> agent -> dispatch gate ->
connector -> record store, exactly as ``sciwm campaign run --no-prefect`` does. The file sets
only what the benchmark must: the problem's space, budget and target, the simulated lab, the
``gp`` world model, a large ``max_experiments`` (so the budget ends a run) and a poll
interval of 0.1 ms (the lab never makes the loop wait). Every other ``[scheduler]`` setting
is left out, so the shipped defaults apply.

The loop is timed from outside: :class:`TimedStore` counts the seconds spent in the record
store, :class:`TimedLoop` those spent fitting the world model and choosing experiments.
"""

from __future__ import annotations

import functools
import math
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from flows.loop import CampaignLoop
from scheduler.gate import Candidate
from sciwm.bench.campaign.methods import PRODUCT_METHODS, RunResult, Settings
from sciwm.experiment import Status
from sciwm.spec import CampaignSpec, parse_spec
from sciwm.store import RecordStore
from sciwm.testing.problems import OBJECTIVE, Problem

#: The simulated lab, as a campaign file names it.
SIMULATED_LAB = "sciwm.testing.simulated_lab:SimulatedLab"
#: Poll interval of the benchmark's campaigns: the simulated lab never makes the loop wait.
POLL_INTERVAL_S = 1e-4

F = TypeVar("F", bound=Callable[..., Any])


def _timed(method: F) -> F:
    """Wrap a store method so that its wall time is added to ``self.seconds``."""

    @functools.wraps(method)
    def wrapper(self: TimedStore, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    return wrapper  # type: ignore[return-value]


class TimedStore(RecordStore):
    """The MLflow record store, counting the seconds spent in each of its calls."""

    seconds: float = 0.0

    open_campaign = _timed(RecordStore.open_campaign)
    record_proposal = _timed(RecordStore.record_proposal)
    record_submitted = _timed(RecordStore.record_submitted)
    record_observation = _timed(RecordStore.record_observation)
    records = _timed(RecordStore.records)
    log_world_model = _timed(RecordStore.log_world_model)
    load_world_model = _timed(RecordStore.load_world_model)


class TimedLoop(CampaignLoop):
    """The campaign loop, counting the seconds of world-model fits and of proposals.

    ``fit_s`` excludes the store's share of :meth:`fit` (logging the fitted model).
    """

    fit_s: float = 0.0
    propose_s: float = 0.0

    def fit(self) -> bool:
        t0, in_store = time.perf_counter(), self._store_seconds()
        try:
            return super().fit()
        finally:
            self.fit_s += time.perf_counter() - t0 - (self._store_seconds() - in_store)

    def propose(self, n: int) -> list[Candidate]:
        t0 = time.perf_counter()
        try:
            return super().propose(n)
        finally:
            self.propose_s += time.perf_counter() - t0

    def _store_seconds(self) -> float:
        return float(getattr(self.store, "seconds", 0.0))


def campaign_name(problem: Problem, method: str, seed: int) -> str:
    """The campaign's name in the record store."""
    return f"{problem.name}-{method}-{seed}"


def campaign_file(
    problem: Problem,
    seed: int,
    cap: float,
    *,
    method: str = "sciwm",
    scheduler: Mapping[str, Any] | None = None,
    max_experiments: int = 400,
) -> str:
    """The campaign file (TOML) of one product run.

    Args:
        problem: The problem the simulated lab evaluates.
        seed: The campaign's seed.
        cap: The budget.
        method: A key of :data:`~sciwm.bench.campaign.methods.PRODUCT_METHODS`.
        scheduler: Further ``[scheduler]`` settings (tuning); they win over the method's.
        max_experiments: ``[stopping] max_experiments``.

    Returns:
        The file's text.
    """
    lines = [
        "[campaign]",
        f'name = "{campaign_name(problem, method, seed)}"',
        f"seed = {int(seed)}",
        "",
    ]
    for p in problem.space().parameters:
        lines += ["[[parameters]]", f'name = "{p.name}"', 'type = "float"']
        lines += [f"low = {_toml(p.low)}", f"high = {_toml(p.high)}", ""]
    lines += ["[[objectives]]", f'name = "{OBJECTIVE}"', 'direction = "minimize"', ""]
    lines += ["[budget]", f"total = {_toml(cap)}", 'unit = "cost"', ""]
    lines += ["[connector]", f'type = "{SIMULATED_LAB}"']
    lines += [f'settings = {{ problem = "{problem.name}" }}', ""]
    lines += ["[world_model]", 'type = "gp"', ""]
    sched = {**PRODUCT_METHODS[method], "poll_interval_s": POLL_INTERVAL_S, **(scheduler or {})}
    lines += ["[scheduler]", *(f"{k} = {_toml(v)}" for k, v in sched.items()), ""]
    lines += ["[stopping]", f"max_experiments = {int(max_experiments)}"]
    lines += [f"target = {_toml(problem.target())}", ""]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def run_product(
    problem: Problem,
    seed: int,
    cap: float,
    s: Settings,
    *,
    method: str,
    store: TimedStore,
    root: Path,
) -> RunResult:
    """One campaign of the product on ``problem``, recorded in ``store``.

    Args:
        problem: The problem.
        seed: The campaign's seed.
        cap: The budget.
        s: The benchmark's settings.
        method: ``"sciwm"`` or ``"sciwm_ei"``.
        store: The record store (a campaign of this name must not be in it yet).
        root: Directory for the simulated lab's state.

    Returns:
        The run's result, read from the campaign's records in completion order.
    """
    text = campaign_file(
        problem,
        seed,
        cap,
        method=method,
        scheduler=s.scheduler,
        max_experiments=s.max_experiments,
    )
    spec: CampaignSpec = parse_spec(tomllib.loads(text), f"<{method} on {problem.name}>")
    in_store = store.seconds
    t0 = time.perf_counter()
    loop = TimedLoop(spec, text, store, root / spec.name)
    loop.run()
    wall = time.perf_counter() - t0
    spent, best = 0.0, math.inf
    reached_at: float | None = None
    reached_n: int | None = None
    for n, rec in enumerate(loop.state.finished, start=1):
        obs = rec.observation
        assert obs is not None
        spent += obs.cost or 0.0
        if obs.status is Status.COMPLETED:
            best = min(best, obs.outcomes[OBJECTIVE])
            if reached_at is None and obs.outcomes[OBJECTIVE] <= problem.target():
                reached_at, reached_n = spent, n
    return RunResult(
        problem.name,
        method,
        seed,
        cap,
        reached_at if reached_at is not None else math.inf,
        reached_n,
        len(loop.state.finished),
        spent,
        best,
        wall,
        store_s=store.seconds - in_store,
        fit_s=loop.fit_s,
        propose_s=loop.propose_s,
    )
