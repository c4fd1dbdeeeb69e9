"""A test double of a world model that predicts before any real result (like a pretrained one).

Its outcome ``f`` is the bowl of :func:`tests.flows.fns.bowl` (maximum 0 at x = 0.3, y = 0.7)
with a fixed std, and every experiment is predicted to cost about 2 cost units. It fits on
any number of results, none included, and learns nothing from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from botorch.posteriors import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from sciwm.experiment import Experiment, Observation
from sciwm.prediction import DEFAULT_LEVEL, Estimate, Prediction
from sciwm.world_model import TrainingSummary, WorldModel, check_level

#: Std of every outcome prediction.
OUTCOME_STD = 0.2
#: Median of every predicted cost, and the std of its log.
COST_MEDIAN, LOG_COST_STD = 2.0, 0.1


class PriorWorldModelDouble(WorldModel):
    """Predicts from a fixed formula, with or without results (outcomes: ``f``, others 0)."""

    name: ClassVar[str] = "prior_double"

    def can_fit(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> bool:
        return True

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        self.summary = TrainingSummary(
            n_observations=len(observations),
            n_cost_observations=len(observations),
            outcomes=list(self.outcomes),
            experiment_ids=[e.id for e in experiments],
        )

    def _mean(self, X: Tensor, outcome: str) -> Tensor:
        """``batch x q`` means at unit-cube points ``X`` (``batch x q x d``)."""
        if outcome != "f":
            return torch.zeros(X.shape[:-1], dtype=X.dtype)
        return -((X[..., 0] - 0.3) ** 2) - (X[..., 1] - 0.7) ** 2

    @staticmethod
    def _posterior(mean: Tensor, std: float) -> GPyTorchPosterior:
        var = torch.full_like(mean, std**2)
        return GPyTorchPosterior(MultivariateNormal(mean, torch.diag_embed(var)))

    def posterior(self, X: Tensor, outcome: str) -> GPyTorchPosterior:
        return self._posterior(self._mean(X, outcome), OUTCOME_STD)

    def log_cost_posterior(self, X: Tensor) -> GPyTorchPosterior:
        mean = torch.full(X.shape[:-1], math.log(COST_MEDIAN), dtype=X.dtype)
        return self._posterior(mean, LOG_COST_STD)

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = DEFAULT_LEVEL
    ) -> list[Prediction]:
        level = check_level(level)
        X = self.space.encode(parameters).reshape(len(parameters), self.space.dim)
        return [
            Prediction(
                outcomes={
                    o: Estimate.gaussian(float(self._mean(x, o)), OUTCOME_STD, level)
                    for o in self.outcomes
                },
                cost=Estimate.lognormal(math.log(COST_MEDIAN), LOG_COST_STD, level),
            )
            for x in X
        ]

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        """Nothing to restore: the formula is the model."""
