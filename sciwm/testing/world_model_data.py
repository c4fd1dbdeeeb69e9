"""Seeded data for world-model tests: smooth outcomes and a log-linear cost on any space.

:func:`make_data` is what :class:`~sciwm.testing.world_model_suite.WorldModelConformance`
trains and queries on by default; a world model's own tests may call it directly for data of
the same shape on another space.
"""

from __future__ import annotations

import math

import torch

from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import SearchSpace


def smooth_outcome(u: torch.Tensor, k: int) -> torch.Tensor:
    """A smooth test function of unit-cube points, different for each outcome index ``k``.

    Args:
        u: A ``n x d`` tensor of unit-cube points.
        k: Outcome index.

    Returns:
        A ``n`` tensor.
    """
    w = torch.arange(1, u.shape[-1] + 1, dtype=u.dtype)
    return torch.sin(math.pi * (u * w).sum(-1) + k) + 0.5 * k


def log_linear_cost(u: torch.Tensor) -> torch.Tensor:
    """A positive cost whose log is linear in the unit-cube point: ``exp(1 + u . w)``.

    Args:
        u: A ``n x d`` tensor.

    Returns:
        A ``n`` tensor of costs.
    """
    w = torch.linspace(1.0, 0.5, u.shape[-1], dtype=u.dtype)
    return torch.exp(1.0 + (u * w).sum(-1))


def make_data(
    space: SearchSpace, outcomes: list[str], n: int, seed: int, noise: float = 0.05
) -> tuple[list[Experiment], list[Observation]]:
    """Seeded, completed experiments on ``space`` with :func:`smooth_outcome` outcomes.

    Args:
        space: The search space.
        outcomes: Outcome names; the ``k``-th is ``smooth_outcome(u, k)`` plus noise.
        n: Number of experiments.
        seed: Seed of the design and the noise.
        noise: Standard deviation of the Gaussian noise on outcomes and on log cost.

    Returns:
        ``n`` experiments and their ``n`` completed observations.
    """
    g = torch.Generator().manual_seed(seed)
    rows = space.sample(n, generator=g)
    u = space.encode(rows)
    experiments = [Experiment.create(f"conformance-{seed}", i, r) for i, r in enumerate(rows)]
    ys = {
        name: smooth_outcome(u, k) + noise * torch.randn(n, generator=g, dtype=torch.double)
        for k, name in enumerate(outcomes)
    }
    cost = log_linear_cost(u) * torch.exp(noise * torch.randn(n, generator=g, dtype=torch.double))
    observations = [
        Observation(
            e.id,
            Status.COMPLETED,
            {name: float(y[i]) for name, y in ys.items()},
            cost=float(cost[i]),
        )
        for i, e in enumerate(experiments)
    ]
    return experiments, observations


def gentle_outcome(u: torch.Tensor, k: int) -> torch.Tensor:
    """A slowly varying test function of unit-cube points (about one half-period across the
    cube), different for each outcome index ``k``: what a model fitted on a few dozen points
    can learn.

    Args:
        u: A ``n x d`` tensor of unit-cube points.
        k: Outcome index.

    Returns:
        A ``n`` tensor.
    """
    w = torch.linspace(1.0, 0.5, u.shape[-1], dtype=u.dtype) * (-1.0) ** torch.arange(
        u.shape[-1], dtype=u.dtype
    )
    return torch.sin(2.0 * (u * w).sum(-1) + k) + 0.5 * k


def make_calibration_data(
    space: SearchSpace, outcomes: list[str], n: int, seed: int, noise: float = 0.1
) -> tuple[list[Experiment], list[Observation]]:
    """Seeded draws from a known distribution: :func:`gentle_outcome` plus Gaussian noise of
    std ``noise`` for each outcome, and :func:`log_linear_cost` times a log-normal factor of
    log-std ``noise``; what the conformance suite's calibration check uses by default.

    Args:
        space: The search space (points drawn uniformly in its unit cube).
        outcomes: Outcome names; the ``k``-th is ``gentle_outcome(u, k)`` plus noise.
        n: Number of experiments.
        seed: Seed of the design and the noise.
        noise: Noise std of the outcomes and of the log cost.

    Returns:
        ``n`` experiments and their ``n`` completed observations.
    """
    g = torch.Generator().manual_seed(seed)
    rows = space.sample(n, generator=g)
    u = space.encode(rows)
    experiments = [Experiment.create(f"calibration-{seed}", i, r) for i, r in enumerate(rows)]
    ys = {
        name: gentle_outcome(u, k) + noise * torch.randn(n, generator=g, dtype=torch.double)
        for k, name in enumerate(outcomes)
    }
    cost = log_linear_cost(u) * torch.exp(noise * torch.randn(n, generator=g, dtype=torch.double))
    observations = [
        Observation(
            e.id,
            Status.COMPLETED,
            {name: float(y[i]) for name, y in ys.items()},
            cost=float(cost[i]),
        )
        for i, e in enumerate(experiments)
    ]
    return experiments, observations
