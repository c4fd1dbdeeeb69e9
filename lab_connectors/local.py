"""The local connector: run a Python callable in a separate process on this machine.

Each experiment gets a directory ``workdir/<experiment id>`` holding ``experiment.json``, the
worker's ``claimed`` marker, ``handle.json``, ``stdout.txt``/``stderr.txt`` and, once it has
finished, ``result.json``. The worker (:mod:`lab_connectors._local_worker`) runs in its own
session, so it outlives the campaign process: after a crash (even ``kill -9``) a new
:class:`LocalConnector` on the same workdir re-attaches to the experiments still running, and
submitting an experiment again never runs it twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from lab_connectors._local_process import last_line, process_runs, tail
from lab_connectors._local_settings import check_function_ref, check_python, positive, unpack
from lab_connectors._local_worker import (
    CLAIM_FILE,
    EXPERIMENT_FILE,
    HANDLE_FILE,
    RESULT_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    read_json,
    write_json_atomic,
)
from sciwm.connector import Connector, Handle
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.registry import load_object

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_KNOWN = ("function", "timeout_s", "parallelism", "python", "env", "outcome", "grace_s")


class LocalConnector(Connector):
    """Runs ``package.module:function`` in a separate process per experiment.

    The callable is called as ``fn(**parameters)``. It returns a number (the outcome named by
    ``outcome``), a dict of outcomes, or ``{"outcomes": {...}, "cost": c}`` (or the flat
    ``{"y": v, "cost": c}``) to report its own cost; otherwise the cost is its wall time in
    seconds. Exceptions, time-outs, non-finite or
    non-numeric outcomes come back as ``FAILED`` observations carrying the error text.

    Workers run in the campaign process's working directory, in a session of their own (a
    ``kill -9`` or Ctrl-C of the campaign leaves them running), with ``SCIWM_EXPERIMENT_DIR``
    and ``SCIWM_EXPERIMENT_ID`` in their environment. ``parallelism`` is what
    :meth:`capacity` reports; :meth:`submit` itself does not queue or refuse.

    Args:
        workdir: Directory owned by the connector for this campaign; stable across restarts.
        function: Import path of the callable, ``"package.module:function"``.
        timeout_s: Wall-time limit per experiment, in seconds. An experiment with a
            ``max_cost`` (its budget cap) is stopped at ``min(timeout_s, max_cost)``.
        parallelism: How many experiments may run at once (what :meth:`capacity` counts from).
        python: Interpreter that runs the workers; defaults to this one.
        env: Extra environment variables for the workers.
        outcome: Outcome name given to a bare number returned by the callable.
        grace_s: Extra seconds past the limit before the connector kills a worker whose own
            watchdog did not stop it (for example, C code holding the GIL).
    """

    name: ClassVar[str] = "local"

    def __init__(
        self,
        workdir: str | Path,
        function: str | None = None,
        timeout_s: float = 600.0,
        parallelism: int = 1,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        outcome: str = "objective",
        grace_s: float = 5.0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConnectorError(
                f"unknown setting(s) {sorted(unknown)} for the local connector; "
                f"known settings: {list(_KNOWN)}. Fix [connector.settings] in the campaign file."
            )
        self.function = check_function_ref(function)
        self.timeout_s = positive("timeout_s", timeout_s)
        self.grace_s = positive("grace_s", grace_s, allow_zero=True)
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ConnectorError(
                f"local connector setting parallelism={parallelism!r} is invalid; "
                "give a whole number >= 1"
            )
        self.parallelism = parallelism
        if not isinstance(outcome, str) or not outcome:
            raise ConnectorError(f"local connector setting outcome={outcome!r}; give a name")
        self.outcome = outcome
        self.python = check_python(python)
        if env is not None and not (
            isinstance(env, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise ConnectorError(
                f"local connector setting env={env!r} is invalid; give a table of string "
                'values, e.g. env = { OMP_NUM_THREADS = "1" }'
            )
        self.env = dict(env or {})
        super().__init__(
            workdir,
            function=self.function,
            timeout_s=self.timeout_s,
            parallelism=parallelism,
            python=self.python,
            env=self.env,
            outcome=outcome,
            grace_s=self.grace_s,
        )
        self.workdir = self.workdir.resolve()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._check_importable()

    # -- the contract ------------------------------------------------------------------------

    def submit(self, experiment: Experiment) -> Handle:
        """Start ``experiment`` in a worker process; idempotent per ``experiment.id``.

        Raises:
            ConnectorError: If the id cannot name a directory or the worker cannot start.
        """
        if not _SAFE_ID.fullmatch(experiment.id):
            raise ConnectorError(
                f"experiment id {experiment.id!r} cannot name a directory; use letters, "
                "digits, '_', '-' and '.' (ids from Experiment.create always can)"
            )
        exp_dir = self.workdir / experiment.id
        handle = read_json(exp_dir / HANDLE_FILE)
        if isinstance(handle, dict):
            return handle
        exp_dir.mkdir(parents=True, exist_ok=True)
        claim = read_json(exp_dir / CLAIM_FILE)
        if isinstance(claim, dict):  # crashed after starting the worker, before the handle
            return self._write_handle(exp_dir, experiment.id, claim["pid"], claim["started_at"])
        write_json_atomic(exp_dir / EXPERIMENT_FILE, self._experiment_record(experiment))
        try:
            with open(exp_dir / STDOUT_FILE, "ab") as out, open(exp_dir / STDERR_FILE, "ab") as err:
                proc = subprocess.Popen(
                    [self.python, "-m", "lab_connectors._local_worker", str(exp_dir)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self._worker_env(),
                    start_new_session=True,
                )
        except OSError as exc:
            raise ConnectorError(
                f"cannot start a worker process with {self.python!r} for experiment "
                f"{experiment.id}: {exc}. Check the 'python' setting."
            ) from None
        self._children[proc.pid] = proc
        return self._write_handle(exp_dir, experiment.id, proc.pid, time.time())

    def poll(self, handle: Handle) -> Status:
        """Status of the experiment; detects dead workers and enforces the time limit."""
        exp_dir, experiment_id = unpack(handle)
        for child in self._children.values():  # reap finished workers: no zombies left behind
            if child.returncode is None:
                child.poll()
        result = read_json(exp_dir / RESULT_FILE)
        if isinstance(result, dict):
            return Status(result["status"])
        pid, started_at = self._worker(exp_dir, handle)
        alive = self._alive(pid, exp_dir)
        if not alive:  # the handle's worker may have lost the claim to one started earlier
            pid, started_at = self._worker(exp_dir, handle)
            alive = self._alive(pid, exp_dir)
        if alive:
            limit = self._limit(exp_dir)
            elapsed = time.time() - started_at
            if elapsed <= limit + self.grace_s:
                return Status.RUNNING
            self._kill(pid, exp_dir)
            return self._conclude(
                exp_dir,
                Observation.failed(
                    experiment_id,
                    f"timed out after {elapsed:.3g} s (limit {limit:g} s); the worker did not "
                    "stop itself, so the connector killed it",
                    cost=limit,
                    started_at=started_at,
                    finished_at=time.time(),
                    metadata={"timed_out": True, "pid": pid},
                ),
            )
        return self._conclude(
            exp_dir,
            Observation.failed(
                experiment_id,
                "worker process died without a result"
                + self._exit_note(pid)
                + tail(exp_dir / STDERR_FILE),
                cost=max(time.time() - started_at, 0.0),
                started_at=started_at,
                finished_at=time.time(),
                metadata={"pid": pid, "transient": True},  # killed (OOM, a node): may pass
            ),
        )

    def fetch(self, handle: Handle) -> Observation:
        """The observation of a finished experiment.

        Raises:
            ConnectorError: If it has not finished yet (poll until it has).
        """
        exp_dir, experiment_id = unpack(handle)
        if not self.poll(handle).finished:
            raise ConnectorError(
                f"experiment {experiment_id} is still running; poll(handle) until it reports "
                "a finished status before fetch(handle)"
            )
        data = read_json(exp_dir / RESULT_FILE)
        try:
            return Observation.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectorError(
                f"{exp_dir / RESULT_FILE} is not a valid result ({exc}); delete the directory "
                f"{exp_dir} to run the experiment again"
            ) from None

    def cancel(self, handle: Handle) -> None:
        """Kill the worker (and its process group); a finished experiment is left as it is."""
        exp_dir, experiment_id = unpack(handle)
        if self.poll(handle).finished:
            return
        pid, started_at = self._worker(exp_dir, handle)
        self._kill(pid, exp_dir)
        self._conclude(
            exp_dir,
            Observation(
                experiment_id,
                Status.CANCELLED,
                cost=max(time.time() - started_at, 0.0),
                started_at=started_at,
                finished_at=time.time(),
                error="cancelled",
                metadata={"pid": pid},
            ),
        )

    def capacity(self) -> int:
        """``parallelism`` minus the experiments of this workdir that are still running."""
        running = 0
        for handle_file in self.workdir.glob(f"*/{HANDLE_FILE}"):
            if (handle_file.parent / RESULT_FILE).exists():
                continue
            handle = read_json(handle_file)
            if isinstance(handle, dict) and self.poll(handle) is Status.RUNNING:
                running += 1
        return max(self.parallelism - running, 0)

    # -- helpers -------------------------------------------------------------------------------

    def _experiment_record(self, experiment: Experiment) -> dict[str, Any]:
        timeout, reason = self.timeout_s, f"the connector's timeout_s={self.timeout_s:g}"
        if experiment.max_cost is not None and experiment.max_cost < timeout:
            timeout = experiment.max_cost
            reason = f"this experiment's budget cap max_cost={experiment.max_cost:g}"
        return {
            **experiment.to_dict(),
            "function": self.function,
            "outcome": self.outcome,
            "timeout_s": timeout,
            "timeout_reason": reason,
        }

    def _write_handle(self, exp_dir: Path, experiment_id: str, pid: int, started: float) -> Handle:
        handle = {
            "experiment_id": experiment_id,
            "dir": str(exp_dir),
            "pid": int(pid),
            "started_at": float(started),
        }
        write_json_atomic(exp_dir / HANDLE_FILE, handle)
        return handle

    def _same_python(self) -> bool:
        return os.path.realpath(self.python) == os.path.realpath(sys.executable)

    def _worker_env(self) -> dict[str, str]:
        """This process's environment plus ``env``; PYTHONPATH lets workers import what we can."""
        env = {**os.environ, **self.env}
        paths = [env.get("PYTHONPATH", ""), os.getcwd(), str(Path(__file__).resolve().parents[1])]
        if self._same_python():
            paths += sys.path
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
        return env

    def _check_importable(self) -> None:
        """Fail now, with a clear message, if workers will not be able to import the callable."""
        if self._same_python() and not any(k.startswith("PYTHON") for k in self.env):
            fn = load_object(self.function, "function", ConnectorError)
            if not callable(fn):
                raise ConnectorError(
                    f"function {self.function!r} is a {type(fn).__name__}, not a callable; "
                    "point the 'function' setting at a function"
                )
            return
        module, _, attr = self.function.partition(":")
        probe = (
            f"import importlib; o = importlib.import_module({module!r})\n"
            f"for a in {attr!r}.split('.'): o = getattr(o, a)\n"
            "assert callable(o), f'{type(o).__name__}, not a callable'"
        )
        check = subprocess.run(
            [self.python, "-c", probe],
            env=self._worker_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check.returncode != 0:
            raise ConnectorError(
                f"cannot load function {self.function!r} with "
                f"{self.python}: {last_line(check.stderr)}. Check the spelling and that the "
                "package is installed for that interpreter (or on PYTHONPATH in 'env')."
            )

    def _worker(self, exp_dir: Path, handle: Handle) -> tuple[int, float]:
        """Pid and start time of the worker that claimed ``exp_dir`` (else the handle's)."""
        claim = read_json(exp_dir / CLAIM_FILE)
        if isinstance(claim, dict):
            return int(claim["pid"]), float(claim["started_at"])
        return int(handle["pid"]), float(handle["started_at"])

    def _alive(self, pid: int, exp_dir: Path) -> bool:
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:  # reaps our own zombie
            return False
        return process_runs(pid, exp_dir)

    def _kill(self, pid: int, exp_dir: Path) -> None:
        if self._alive(pid, exp_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 5.0
        while self._alive(pid, exp_dir) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _conclude(self, exp_dir: Path, observation: Observation) -> Status:
        """Write ``observation`` unless the worker wrote its own result meanwhile."""
        result = read_json(exp_dir / RESULT_FILE)
        if isinstance(result, dict):
            return Status(result["status"])
        write_json_atomic(exp_dir / RESULT_FILE, observation.to_dict())
        return observation.status

    def _limit(self, exp_dir: Path) -> float:
        record = read_json(exp_dir / EXPERIMENT_FILE)
        return float(record["timeout_s"]) if isinstance(record, dict) else self.timeout_s

    def _exit_note(self, pid: int) -> str:
        child = self._children.get(pid)
        if child is None:
            return ""
        if child.returncode is None:  # seen dead in /proc a moment before it could be reaped
            try:
                child.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                return ""
        code = child.returncode
        return f" (killed by signal {-code})" if code < 0 else f" (exit status {code})"
