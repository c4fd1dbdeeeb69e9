"""A whole batch in one optimisation: the agent's proposal path once a campaign is large.

The agent builds a batch of ``q`` points by sequential greedy optimisation: ``q`` runs of the
acquisition optimiser, each point joining the pending ones before the next is chosen. Each
run's cost grows with the world model's training set (its posterior at the baseline and
pending points), so with hundreds of results a batch of 8 takes tens of seconds on one core.
:func:`optimize_joint` instead maximises the batch acquisition ``alpha(x_1, ..., x_q)`` (the
Monte-Carlo ``q``-point expected improvement, minus the log of the batch's summed predicted
cost for ``"ei_per_cost"``) over all ``q`` points at once: one optimiser run whose evaluations
cost little more than one point's. The agent takes this path past ``joint_batch_above``
completed results (see :class:`scheduler.agent.Agent`), for the ``ei`` and ``ei_per_cost``
acquisitions of a space without fidelity parameters.
"""

from __future__ import annotations

import math
import warnings

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf
from torch import Tensor

from sciwm.space import SearchSpace

#: Default number of completed results from which a batch is optimised jointly.
DEFAULT_JOINT_BATCH_ABOVE = 500
#: Acquisitions the joint path supports (``q``-point forms).
JOINT_ACQUISITIONS = ("ei", "ei_per_cost")
#: L-BFGS-B iterations of the joint optimiser run. Its ``q x d`` (48 for 8 points of 6)
#: dimensions took 80-1,100 evaluations to converge to botorch's default tolerance, each
#: costing about 10 ms whatever the history; on the scale suite's tuning histories (Hartmann6,
#: 1,000 results, seeds 5-8) the batch's best point was the same to 4 decimals after 30
#: iterations (37-56 evaluations) as at convergence.
JOINT_MAXITER = 30


def optimize_joint(
    acqf: AcquisitionFunction,
    space: SearchSpace,
    q: int,
    num_restarts: int,
    raw_samples: int,
    seed: int,
    maxiter: int = JOINT_MAXITER,
) -> tuple[Tensor, list[float | None]]:
    """Maximise the ``q``-point acquisition; the batch best point first.

    Args:
        acqf: An acquisition function taking ``b x q x d`` tensors (pending points set).
        space: The search space (its bounds and rounding).
        q: Batch size.
        num_restarts: Restarts of the optimiser.
        raw_samples: Raw samples the restarts are picked from.
        seed: Seed of the optimiser.
        maxiter: Most L-BFGS-B iterations (default :data:`JOINT_MAXITER`).

    Returns:
        ``(X, values)``: a ``q x d`` tensor of unit-cube points (rounded to the space) and
        each point's own acquisition value (``q = 1``), in decreasing order of that value.
    """
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore")
        X, _ = optimize_acqf(
            acqf,
            bounds=space.bounds(),
            q=q,
            num_restarts=num_restarts,
            raw_samples=raw_samples,
            options={"maxiter": maxiter},
        )
        X = space.round_trip(X.detach().reshape(q, -1))
        with torch.no_grad():
            own = acqf(X.unsqueeze(-2)).reshape(-1)
    order = torch.argsort(own, descending=True)
    values = [float(own[i]) if math.isfinite(float(own[i])) else None for i in order.tolist()]
    return X[order], values
