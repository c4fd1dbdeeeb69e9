"""A lab and a world model where the best experiment is too dear for the budget.

The outcome ``f`` is ``x`` (best at ``x = 1``) and an experiment costs
``1 + 99 * x ** 4`` (1 at ``x = 0``, 100 at the best). :class:`DearBestDouble` knows both
from the start (like a pretrained world model), with a fixed outcome std; :func:`dear_best`
is the lab's function for the simulated lab.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from sciwm.prediction import DEFAULT_LEVEL, Estimate, Prediction
from sciwm.world_model import check_level
from tests.flows.prior_double import LOG_COST_STD, OUTCOME_STD, PriorWorldModelDouble


def cost_of(x: float | Tensor) -> Any:
    """Cost of an experiment at ``x`` (in [0, 1])."""
    return 1.0 + 99.0 * x**4


def dear_best(x: float) -> dict[str, Any]:
    """The lab: outcome ``f = x`` at cost :func:`cost_of`."""
    return {"outcomes": {"f": float(x)}, "cost": float(cost_of(x))}


class DearBestDouble(PriorWorldModelDouble):
    """Predicts ``f = x`` (std :data:`OUTCOME_STD`) and cost :func:`cost_of` from the start."""

    name: ClassVar[str] = "dear_best_double"

    def _mean(self, X: Tensor, outcome: str) -> Tensor:
        return X[..., 0] if outcome == "f" else torch.zeros(X.shape[:-1], dtype=X.dtype)

    def log_cost_posterior(self, X: Tensor) -> Any:
        return self._posterior(torch.log(cost_of(X[..., 0])), LOG_COST_STD)

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = DEFAULT_LEVEL
    ) -> list[Prediction]:
        level = check_level(level)
        X = self.space.encode(parameters).reshape(len(parameters), self.space.dim)
        return [
            Prediction(
                outcomes={
                    o: Estimate.gaussian(float(x[0]), OUTCOME_STD, level) for o in self.outcomes
                },
                cost=Estimate.lognormal(math.log(float(cost_of(x[0]))), LOG_COST_STD, level),
            )
            for x in X
        ]
