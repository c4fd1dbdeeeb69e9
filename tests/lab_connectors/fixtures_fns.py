"""Small callables that the local connector's tests run in worker processes.

Only the standard library here: workers import this module, and a fast import keeps the tests
fast. Each call appends a line to ``runs.txt`` in its experiment directory, so tests can count
how often an experiment really ran.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path


def _count_run() -> None:
    with open(Path(os.environ["SCIWM_EXPERIMENT_DIR"]) / "runs.txt", "a") as fh:
        fh.write(f"{os.getpid()}\n")


def quadratic(x: float) -> dict[str, float]:
    """``y = -(x - 0.3)**2``, the outcome ``y``."""
    _count_run()
    return {"y": -((x - 0.3) ** 2)}


def slow_quadratic(x: float, delay: float = 1.0, fail: bool = False) -> dict[str, float]:
    """:func:`quadratic` after sleeping ``delay`` seconds; raises like :func:`boom` if ``fail``."""
    _count_run()
    if fail:
        raise ValueError(f"boom at x={x}")
    time.sleep(delay)
    return {"y": -((x - 0.3) ** 2)}


def bare(x: float) -> float:
    """A bare number: the connector names it with its ``outcome`` setting."""
    _count_run()
    return 2.0 * x


def boom(x: float) -> float:
    """Always raises ``ValueError("boom")``."""
    _count_run()
    raise ValueError(f"boom at x={x}")


def nan_result(x: float) -> dict[str, float]:
    """A non-finite outcome."""
    _count_run()
    return {"y": float("nan"), "z": x}


def not_a_number(x: float) -> dict[str, object]:
    """An outcome that is not a number."""
    _count_run()
    return {"y": "high"}


def wrong_type(x: float) -> list[float]:
    """A return value of the wrong type."""
    _count_run()
    return [x]


def sleeper(x: float, delay: float = 30.0) -> float:
    """Sleeps ``delay`` seconds (past any short time limit), then returns ``x``."""
    _count_run()
    time.sleep(delay)
    return x


def gil_hog(x: float) -> float:
    """Catastrophic regex backtracking: C code that holds the GIL, so no watchdog can run."""
    _count_run()
    re.match(r"(a+)+b", "a" * 64)
    return x


def reported_cost(x: float) -> dict[str, object]:
    """Reports its own cost (say, GPU-hours) instead of the wall time."""
    _count_run()
    return {"outcomes": {"y": x}, "cost": 12.5, "metadata": {"gpu": "none"}}


def bad_reported_cost(x: float) -> dict[str, object]:
    """Reports a negative cost."""
    _count_run()
    return {"outcomes": {"y": x}, "cost": -1.0}


def from_env(x: float) -> float:
    """Reads the outcome from the environment variable ``SCIWM_TEST_VALUE``."""
    _count_run()
    return float(os.environ["SCIWM_TEST_VALUE"]) + x


def suicide(x: float) -> float:
    """Kills its own process: the worker dies without writing a result."""
    _count_run()
    os.kill(os.getpid(), signal.SIGKILL)
    return x


NOT_CALLABLE = 42


def flat_cost(x: float) -> dict[str, float]:
    """The shape a user naturally writes: outcomes and the cost side by side."""
    _count_run()
    return {"y": x, "cost": 3.25}


def flat_bad_cost(x: float) -> dict[str, object]:
    """A flat result whose cost is not a number."""
    _count_run()
    return {"y": x, "cost": "cheap"}
