"""Functions the simulated lab evaluates in the scheduler's tests."""

from __future__ import annotations


def bowl(x: float, y: float) -> dict:
    """A smooth bowl with its minimum at (0.3, 0.7); the cost grows with x."""
    return {"outcomes": {"f": (x - 0.3) ** 2 + (y - 0.7) ** 2}, "cost": 1.0 + x}
