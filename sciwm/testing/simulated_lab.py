"""A simulated lab: a connector that evaluates a synthetic problem in virtual time.

:class:`SimulatedLab` implements the :class:`sciwm.connector.Connector` contract for
benchmarks, tests and dry runs of a campaign file. Each experiment is evaluated once, when it
is submitted, and its result is revealed when the lab's *virtual clock* passes the
experiment's end. Nothing sleeps, so a campaign against the lab runs as fast as the loop.

The virtual clock (like Ax's backend simulator, without real time):

- an experiment submitted at virtual time ``t`` ends at ``t + run_time`` (``run_time = 0``:
  it has finished by its first poll);
- time stands still until the caller has seen every running experiment running once at the
  current time: polling an experiment already reported running at the current time moves the
  clock to the next end among the running experiments. A loop that polls everything it runs,
  step after step, thus sees the experiments finish one event at a time, in order of their
  virtual end, as it would with a real backend.

Costs are simulated (a problem's cost surface, or what a user's callable reports), not time.
The lab stops an experiment at its budget cap (``Experiment.max_cost``): it comes back
``FAILED``, costing the cap, without outcomes. State lives in ``workdir/simulated_lab.json``,
so a new lab on the same workdir finds every experiment (and handle) again; one process at a
time may use a workdir.

Campaign file::

    [connector]
    type = "sciwm.testing.simulated_lab:SimulatedLab"
    settings = { problem = "branin" }

Settings:
    problem: Name of a problem of :mod:`sciwm.testing.problems` (``"branin"``,
        ``"hartmann6"``); its outcome is ``"f"`` and its cost the problem's cost surface. A
        multi-objective problem (``"branin_currin"``) reports outcomes ``"f1"``, ``"f2"``.
    function: Instead of ``problem``, an import path ``"package.module:function"`` called as
        ``fn(**parameters)``. It returns a number (the outcome named ``outcome``), a dict of
        outcomes, or ``{"outcomes": {...}, "cost": c}``; raising makes a ``FAILED`` experiment.
    cost_function: Import path of ``cost(**parameters) -> float`` for a ``function`` that
        reports no cost (default: every experiment costs 1).
    outcome: Name of a bare number's outcome (default ``"f"`` for a problem, ``"objective"``
        for a function).
    parallelism: Experiments that may run at once (what :meth:`capacity` counts from).
    run_time: Virtual run time of every experiment, a number >= 0, or ``"cost"`` for a run
        time equal to its cost (default 0).
    failure_rate: Fraction in [0, 1) of experiments that fail (``"simulated failure"``) after
        costing their full cost; which ones is fixed by ``seed`` and the experiment id.
    seed: Seed of the simulated failures.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sciwm.connector import Connector, Handle
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.registry import load_object
from sciwm.testing.problems import OBJECTIVE, MOProblem, problem_named

STATE_FILE = "simulated_lab.json"
_KNOWN = (
    "problem",
    "function",
    "cost_function",
    "outcome",
    "parallelism",
    "run_time",
    "failure_rate",
    "seed",
)


class SimulatedLab(Connector):
    """Evaluates a synthetic problem or a callable, with simulated cost, run time and failures.

    Args:
        workdir: Directory holding the lab's state, stable across restarts.
        problem: Problem name (see the module docstring); exclusive with ``function``.
        function: Import path of the callable to evaluate; exclusive with ``problem``.
        cost_function: Import path of the cost of a ``function`` that reports none.
        outcome: Outcome name of a bare number.
        parallelism: Experiments that may run at once.
        run_time: Virtual run time per experiment (>= 0), or ``"cost"``.
        failure_rate: Fraction of experiments that fail, in [0, 1).
        seed: Seed of the simulated failures.

    Raises:
        ConnectorError: If a setting is unknown or invalid, naming the fix.
    """

    name: ClassVar[str] = "simulated_lab"

    def __init__(
        self,
        workdir: str | Path,
        problem: str | None = None,
        function: str | None = None,
        cost_function: str | None = None,
        outcome: str | None = None,
        parallelism: int = 1,
        run_time: float | str = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConnectorError(
                f"unknown setting(s) {sorted(unknown)} for the simulated lab; known settings: "
                f"{list(_KNOWN)}. Fix [connector.settings] in the campaign file."
            )
        if (problem is None) == (function is None):
            raise ConnectorError(
                "the simulated lab needs exactly one of the settings 'problem' (e.g. "
                "\"branin\") and 'function' (an import path 'package.module:function')"
            )
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ConnectorError(
                f"simulated lab setting parallelism={parallelism!r} is invalid; give a whole "
                "number >= 1"
            )
        if not (run_time == "cost" or _is_number(run_time) and 0 <= float(run_time) < math.inf):
            raise ConnectorError(
                f"simulated lab setting run_time={run_time!r} is invalid; give a number >= 0 "
                'or "cost"'
            )
        if not (_is_number(failure_rate) and 0 <= float(failure_rate) < 1):
            raise ConnectorError(
                f"simulated lab setting failure_rate={failure_rate!r} is invalid; give a "
                "number in [0, 1)"
            )
        self._problem = None
        self._function: Callable[..., Any] | None = None
        self._cost_function: Callable[..., Any] | None = None
        if problem is not None:
            try:
                self._problem = problem_named(str(problem))
            except KeyError as exc:
                raise ConnectorError(f"simulated lab setting problem: {exc.args[0]}") from None
        else:
            self._function = _callable(function, "function")
        if cost_function is not None:
            self._cost_function = _callable(cost_function, "cost_function")
        self.outcome = outcome or (OBJECTIVE if problem is not None else "objective")
        self.parallelism = parallelism
        self.run_time = run_time if run_time == "cost" else float(run_time)
        self.failure_rate = float(failure_rate)
        self.seed = int(seed)
        given = {
            "problem": problem,
            "function": function,
            "cost_function": cost_function,
            "outcome": self.outcome,
            "parallelism": parallelism,
            "run_time": self.run_time,
            "failure_rate": self.failure_rate,
            "seed": self.seed,
        }
        super().__init__(workdir, **{k: v for k, v in given.items() if v is not None})
        self._path = self.workdir / STATE_FILE
        self._now, self._experiments = self._load()

    # -- the contract ------------------------------------------------------------------------

    def submit(self, experiment: Experiment) -> Handle:
        """Evaluate ``experiment`` and start it at the current virtual time; idempotent."""
        if experiment.id not in self._experiments:
            self._experiments[experiment.id] = self._evaluate(experiment)
            self._save()
        return {"experiment_id": experiment.id}

    def poll(self, handle: Handle) -> Status:
        """The experiment's status at the current virtual time (see the module docstring)."""
        rec = self._get(handle)
        if self._finished(rec):
            return Status(rec["status"])
        if rec["seen_at"] == self._now:
            self._now = min(r["end"] for r in self._experiments.values() if not self._finished(r))
        if self._finished(rec):
            status = Status(rec["status"])
        else:
            rec["seen_at"] = self._now
            status = Status.RUNNING
        self._save()
        return status

    def fetch(self, handle: Handle) -> Observation:
        """The observation of a finished experiment.

        Raises:
            ConnectorError: If the experiment is still running.
        """
        rec = self._get(handle)
        if not self._finished(rec):
            raise ConnectorError(
                f"experiment {handle['experiment_id']} is still running in the simulated lab; "
                "poll it until it has finished before fetching"
            )
        return Observation(
            handle["experiment_id"],
            Status(rec["status"]),
            dict(rec["outcomes"]),
            rec["cost"],
            error=rec["error"],
            metadata={"simulated_start": rec["start"], "simulated_end": rec["end"]},
        )

    def cancel(self, handle: Handle) -> None:
        """Stop a running experiment now, charging the part of its cost run so far."""
        rec = self._get(handle)
        if self._finished(rec):
            return
        share = (self._now - rec["start"]) / (rec["end"] - rec["start"])
        rec.update(
            status=Status.CANCELLED.value,
            outcomes={},
            cost=(rec["cost"] or 0.0) * share,
            error="cancelled",
            end=self._now,
        )
        self._save()

    def capacity(self) -> int:
        """Slots free at the current virtual time: ``parallelism`` minus the running ones."""
        running = sum(not self._finished(r) for r in self._experiments.values())
        return max(0, self.parallelism - running)

    # -- inspection --------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The lab's virtual time."""
        return self._now

    def record(self, experiment_id: str) -> dict[str, Any] | None:
        """What the lab holds about an experiment (virtual start and end, status, cost,
        outcomes, error, ``evaluations``: how often it was evaluated), or ``None``."""
        rec = self._experiments.get(experiment_id)
        return None if rec is None else json.loads(json.dumps(rec))

    # -- evaluation --------------------------------------------------------------------------

    def _evaluate(self, experiment: Experiment) -> dict[str, Any]:
        """Evaluate once; the record holds the result to reveal at its virtual end."""
        status, outcomes, cost, error = self._outcome(experiment.parameters)
        if status is Status.COMPLETED and self.failure_rate:
            draw = random.Random(f"{self.seed}:{experiment.id}").random()
            if draw < self.failure_rate:
                status, outcomes, error = Status.FAILED, {}, "simulated failure"
        run_time = cost if self.run_time == "cost" else self.run_time
        cap = experiment.max_cost
        if cap is not None and cost > cap:
            run_time *= cap / cost
            error = f"stopped at its cost cap {cap:.6g} (it would have cost {cost:.6g})"
            status, outcomes, cost = Status.FAILED, {}, float(cap)
        return {
            "start": self._now,
            "end": self._now + float(run_time),
            "status": status.value,
            "outcomes": outcomes,
            "cost": cost,
            "error": error,
            "seen_at": None,
            "evaluations": 1,
        }

    def _outcome(
        self, parameters: Mapping[str, Any]
    ) -> tuple[Status, dict[str, float], float, str | None]:
        """``(status, outcomes, cost, error)`` of one evaluation."""
        if self._problem is not None:
            try:
                self._problem.space().validate(parameters)
            except Exception as exc:  # noqa: BLE001 - a bad parameter fails the experiment
                return Status.FAILED, {}, 0.0, f"{type(exc).__name__}: {exc}"
            if isinstance(self._problem, MOProblem):
                outcomes, cost = self._problem.evaluate_outcomes(parameters)
                return Status.COMPLETED, outcomes, cost, None
            value, cost = self._problem.evaluate(parameters)
            return Status.COMPLETED, {self.outcome: value}, cost, None
        assert self._function is not None
        try:
            raw = self._function(**parameters)
            outcomes, cost = self._unpack(raw)
            if cost is None:
                cost = float(self._cost_function(**parameters)) if self._cost_function else 1.0
        except Exception as exc:  # noqa: BLE001 - the user's callable failed: a result
            return Status.FAILED, {}, 0.0, f"{type(exc).__name__}: {exc}"
        if not (math.isfinite(cost) and cost >= 0):
            return Status.FAILED, {}, 0.0, f"the cost must be a finite number >= 0, got {cost!r}"
        return Status.COMPLETED, outcomes, cost, None

    def _unpack(self, raw: Any) -> tuple[dict[str, float], float | None]:
        """Outcomes and reported cost of what the callable returned."""
        cost = None
        if isinstance(raw, Mapping) and "outcomes" in raw:
            cost = None if raw.get("cost") is None else float(raw["cost"])
            raw = raw["outcomes"]
        if _is_number(raw):
            raw = {self.outcome: raw}
        if not isinstance(raw, Mapping):
            raise TypeError(
                f"the function returned {type(raw).__name__}; return a number, a dict of "
                'outcomes or {"outcomes": {...}, "cost": c}'
            )
        outcomes = {}
        for name, value in raw.items():
            if not _is_number(value) or not math.isfinite(float(value)):
                raise ValueError(f"outcome {name!r} is {value!r}, not a finite number")
            outcomes[str(name)] = float(value)
        return outcomes, cost

    # -- state -------------------------------------------------------------------------------

    def _finished(self, rec: Mapping[str, Any]) -> bool:
        return rec["status"] == Status.CANCELLED.value or rec["end"] <= self._now

    def _get(self, handle: Handle) -> dict[str, Any]:
        exp_id = handle.get("experiment_id") if isinstance(handle, Mapping) else None
        if exp_id not in self._experiments:
            raise ConnectorError(
                f"the simulated lab in {self.workdir} holds no experiment for handle {handle!r}; "
                "submit it there first (or point the campaign at the workdir it ran in)"
            )
        return self._experiments[exp_id]

    def _load(self) -> tuple[float, dict[str, dict[str, Any]]]:
        if not self._path.exists():
            return 0.0, {}
        try:
            data = json.loads(self._path.read_text())
            return float(data["now"]), dict(data["experiments"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConnectorError(
                f"the simulated lab's state {self._path} cannot be read ({exc}); delete it to "
                "start the lab afresh"
            ) from None

    def _save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"now": self._now, "experiments": self._experiments}))
        os.replace(tmp, self._path)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _callable(ref: Any, setting: str) -> Callable[..., Any]:
    fn = load_object(str(ref), f"simulated lab setting {setting}", ConnectorError)
    if not callable(fn):
        raise ConnectorError(
            f"simulated lab setting {setting}={ref!r} is not callable; point it at a function"
        )
    return fn
