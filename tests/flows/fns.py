"""Callables the flow tests run as real experiments through the local connector."""

from __future__ import annotations

import math
import os
import time


def bowl(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """A smooth 2-D bowl with its maximum 0 at (0.3, 0.7); sleeps a little, longer for larger x.

    When ``SCIWM_TEST_CALL_LOG`` is set, appends one line per call so tests can check that no
    experiment ran twice.
    """
    log = os.environ.get("SCIWM_TEST_CALL_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{x!r},{y!r},{kind}\n")
    time.sleep(0.05 + 0.25 * x)
    return {"f": -((x - 0.3) ** 2) - (y - 0.7) ** 2, "g": x + y}


def bowl_with_failures(x: float, y: float, kind: str = "a") -> dict[str, float]:
    """Like :func:`bowl`, but raises for x > 0.75 and returns NaN for y < 0.15."""
    if x > 0.75:
        raise RuntimeError(f"the lab broke at x={x:.3f}")
    if y < 0.15:
        return {"f": math.nan, "g": x + y}
    return bowl(x, y, kind)
