"""The benchmark's problems and simulated lab: test functions, the cost surface, the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

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


def cost_of(u: torch.Tensor) -> torch.Tensor:
    """Cost of experiments at unit-cube points.

    Args:
        u: A ``n x d`` tensor in [0, 1].

    Returns:
        A ``n`` tensor: ``COST_MIN * COST_SPAN ** ((u_1 + u_d) / 2)``.
    """
    return COST_MIN * COST_SPAN ** ((u[..., 0] + u[..., -1]) / 2)


def to_native(fn: Any, u: torch.Tensor) -> torch.Tensor:
    """Map ``n x d`` unit-cube points to the native bounds of the test function ``fn``."""
    lb, ub = fn.bounds[0].to(u), fn.bounds[1].to(u)
    return lb + u * (ub - lb)
