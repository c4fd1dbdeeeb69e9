"""Callables that fail the ways real experiments do, for the fault-handling tests.

Standard library only (workers import this module). ``SCIWM_TEST_MARKS`` names a folder
where calls leave marks, so that a callable can fail the first time and pass the second.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _mark(x: float, y: float, kind: str) -> bool:
    """Leave a mark for these parameters; ``True`` if one was there already."""
    folder = Path(os.environ["SCIWM_TEST_MARKS"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{x!r}-{y!r}-{kind}"
    seen = path.exists()
    path.touch()
    return seen


def _log_call() -> None:
    log = os.environ.get("SCIWM_TEST_CALL_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(os.environ.get("SCIWM_EXPERIMENT_ID", "?") + "\n")


def wrong_signature(a: float) -> float:
    """Does not take the campaign's parameters: every call is a TypeError."""
    return a


def bowl(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """Fast bowl with its maximum 0 at (0.3, 0.7), and a reported cost: the flat form."""
    _log_call()
    return {"f": -((x - 0.3) ** 2) - (y - 0.7) ** 2, "cost": 0.01 + x}


def poison_above_half(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """The worker dies (as if killed by the OOM killer) for x > 0.5, every time."""
    if x > 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
    return bowl(x, y, kind)


def flaky(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """The worker dies on the first call for given parameters and succeeds on the second."""
    if not _mark(x, y, kind):
        os.kill(os.getpid(), signal.SIGKILL)
    return bowl(x, y, kind)


def hangs_above_half(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """Hangs for a minute for x > 0.5 (a stuck instrument), else answers at once."""
    if x > 0.5:
        time.sleep(60)
    return bowl(x, y, kind)


def slow(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """Takes half a second of wall time and reports no cost of its own."""
    time.sleep(0.5)
    return {"f": -((x - 0.3) ** 2) - (y - 0.7) ** 2}
