"""Worker process of the local connector: ``python -m lab_connectors._local_worker DIR``.

``DIR`` holds ``experiment.json`` (written by :class:`lab_connectors.local.LocalConnector`).
The worker claims the directory (so that an experiment never runs twice), imports the
callable, calls ``fn(**parameters)`` under a watchdog that enforces the time limit, and writes
``result.json`` atomically in the form of :meth:`sciwm.experiment.Observation.to_dict`.

This module imports only the standard library, on purpose: importing :mod:`sciwm` pulls in
torch, which would add seconds to every experiment and count against its time limit.

What the callable may return:

- a number: the single outcome named by the connector's ``outcome`` setting;
- a dict of outcomes, ``{"accuracy": 0.93, "loss": 0.2}``;
- ``{"outcomes": {...}, "cost": 12.0, "metadata": {...}}``: a reported cost replaces the
  measured wall time; ``cost`` and ``metadata`` are optional;
- the flat form ``{"accuracy": 0.93, "cost": 12.0}``: the keys ``cost`` and ``metadata`` are
  the reported cost and metadata, never outcomes (so no outcome can be named ``cost``).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

EXPERIMENT_FILE = "experiment.json"
HANDLE_FILE = "handle.json"
CLAIM_FILE = "claimed"
RESULT_FILE = "result.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"

#: Exit status of a worker that found the directory already claimed by another worker.
EXIT_ALREADY_CLAIMED = 3
#: Exit status of a worker started with bad arguments.
EXIT_USAGE = 2

_COMPLETED = "completed"  # values of sciwm.experiment.Status, kept in sync by the tests
_FAILED = "failed"
_TRACEBACK_LINES = 15


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, allow_nan=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file; ``None`` when it is missing or not (yet) valid JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def claim(directory: Path) -> bool:
    """Claim ``directory`` for this process, atomically; ``False`` if another worker has it.

    The claim file holds ``{"pid", "started_at"}``; it is created complete (written to a
    temporary file, then hard-linked into place, which fails if the name exists).
    """
    tmp = directory / f".{CLAIM_FILE}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "started_at": time.time()}, fh)
    try:
        os.link(tmp, directory / CLAIM_FILE)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _result(
    experiment_id: str,
    status: str,
    outcomes: dict[str, float] | None = None,
    cost: float | None = None,
    started_at: float | None = None,
    error: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A result in the form of ``Observation.to_dict()``."""
    return {
        "experiment_id": experiment_id,
        "status": status,
        "outcomes": dict(outcomes or {}),
        "cost": cost,
        "started_at": started_at,
        "finished_at": time.time(),
        "error": error,
        "metadata": dict(metadata or {}),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def interpret(
    value: Any, outcome_name: str, wall_s: float
) -> tuple[dict[str, float], float, dict[str, Any], str | None]:
    """Turn what the callable returned into ``(outcomes, cost, metadata, error)``.

    ``error`` is ``None`` when the result is usable; otherwise it says what was wrong, and
    ``outcomes`` keeps only the finite numeric values.
    """
    cost, metadata = wall_s, {"cost_source": "wall_time"}
    if _is_number(value):
        raw: Any = {outcome_name: value}
    elif isinstance(value, dict) and ("outcomes" in value or "cost" in value):
        # {"outcomes": {...}, "cost": c} or the flat {"y": v, "cost": c}
        nested = "outcomes" in value
        raw = (
            value["outcomes"]
            if nested
            else {k: v for k, v in value.items() if k not in ("cost", "metadata")}
        )
        extra = value.get("metadata") or {}
        if isinstance(extra, dict):
            metadata.update({str(k): v for k, v in extra.items()})
        if value.get("cost") is not None:
            reported = value["cost"]
            if not (_is_number(reported) and math.isfinite(reported) and reported >= 0):
                error = (
                    f"the callable reported cost={reported!r}; a reported cost must be a "
                    "finite number >= 0, as in {'y': 0.9, 'cost': 12.0} or "
                    "{'outcomes': {'y': 0.9}, 'cost': 12.0} (or leave 'cost' out to use the "
                    "wall time)"
                )
                return {}, wall_s, metadata, error
            cost, metadata["cost_source"] = float(reported), "reported"
    else:
        raw = value
    if not isinstance(raw, dict) or not raw:
        error = (
            f"the callable returned {type(value).__name__} {_short(value)}; return a number, "
            "a dict of outcomes {'name': value}, or {'outcomes': {...}, 'cost': ...}"
        )
        return {}, cost, metadata, error
    outcomes: dict[str, float] = {}
    problems = []
    for name, v in raw.items():
        if not _is_number(v):
            problems.append(f"outcome {name!r} is not a number: {_short(v)}")
        elif not math.isfinite(v):
            problems.append(f"non-finite outcome {name!r}={v!r}")
        else:
            outcomes[str(name)] = float(v)
    return outcomes, cost, metadata, ("; ".join(problems) or None)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_function(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class _Run:
    """One guarded call: whichever of the call and the watchdog finishes first writes."""

    def __init__(self, directory: Path, spec: dict[str, Any], t0: float) -> None:
        self.directory = directory
        self.spec = spec
        self.experiment_id = str(spec["id"])
        self.t0 = t0
        self.started_at = time.time()
        self.lock = threading.Lock()
        self.done = False
        self.finished = threading.Event()

    def write(self, result: dict[str, Any]) -> bool:
        """Write ``result`` unless the other side already wrote; returns whether it wrote."""
        with self.lock:
            if self.done:
                return False
            self.done = True
            result["metadata"].setdefault("pid", os.getpid())
            write_json_atomic(self.directory / RESULT_FILE, result)
            return True

    def fail(self, error: str, cost: float, **metadata: Any) -> bool:
        """Write a ``FAILED`` result (unless the other side already wrote)."""
        self.finished.set()
        return self.write(
            _result(self.experiment_id, _FAILED, None, cost, self.started_at, error, metadata)
        )

    def watchdog(self, timeout: float) -> None:
        if self.finished.wait(timeout):
            return
        reason = self.spec.get("timeout_reason") or f"timeout_s={timeout:g}"
        error = f"timed out after {timeout:g} s ({reason}); the experiment was stopped"
        if self.fail(error, timeout, timed_out=True, wall_time_s=time.perf_counter() - self.t0):
            _die()


def _die() -> None:
    """End this worker and everything it started (its process group, when it leads one)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(124)


def run(directory: Path) -> int:
    """Run the experiment in ``directory`` and write its result; returns the exit status."""
    t0 = time.perf_counter()
    if not claim(directory):
        print(
            f"{directory} is already claimed by another worker; not running it twice",
            file=sys.stderr,
        )
        return EXIT_ALREADY_CLAIMED
    spec = read_json(directory / EXPERIMENT_FILE)
    if not isinstance(spec, dict):
        _write_plain(directory, directory.name, f"cannot read {EXPERIMENT_FILE} in {directory}")
        return 0
    guard = _Run(directory, spec, t0)
    timeout = float(spec["timeout_s"])
    threading.Thread(target=guard.watchdog, args=(timeout,), daemon=True).start()
    os.environ["SCIWM_EXPERIMENT_DIR"] = str(directory)
    os.environ["SCIWM_EXPERIMENT_ID"] = guard.experiment_id
    try:
        fn = _load_function(str(spec["function"]))
    except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
        error = f"cannot load the callable {spec['function']!r}: {type(exc).__name__}: {exc}"
        guard.fail(error, time.perf_counter() - t0, traceback=_tb_tail())
        return 0
    guard.started_at = time.time()
    start = time.perf_counter()
    try:
        value = fn(**spec["parameters"])
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt are failures too
        wall = time.perf_counter() - start
        guard.fail(f"{type(exc).__name__}: {exc}", wall, traceback=_tb_tail(), wall_time_s=wall)
        return 0
    wall = time.perf_counter() - start
    guard.finished.set()
    outcomes, cost, metadata, error = interpret(value, str(spec.get("outcome", "objective")), wall)
    metadata["wall_time_s"] = wall
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError):
        metadata = {k: v if _jsonable(v) else repr(v) for k, v in metadata.items()}
    status = _FAILED if error else _COMPLETED
    guard.write(
        _result(guard.experiment_id, status, outcomes, cost, guard.started_at, error, metadata)
    )
    return 0


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _tb_tail() -> str:
    lines = traceback.format_exc().rstrip().splitlines()
    return "\n".join(lines[-_TRACEBACK_LINES:])


def _write_plain(directory: Path, experiment_id: str, error: str) -> None:
    write_json_atomic(directory / RESULT_FILE, _result(experiment_id, _FAILED, error=error))


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m lab_connectors._local_worker DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m lab_connectors._local_worker EXPERIMENT_DIR", file=sys.stderr)
        return EXIT_USAGE
    status = run(Path(args[0]).resolve())
    sys.stdout.flush()
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    # os._exit: lingering threads or children of the callable must not keep the worker alive.
    os._exit(main())
