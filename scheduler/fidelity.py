"""Choosing an experiment's fidelity: information about the target fidelity per unit of cost.

A fidelity parameter (simulation length, epochs, training-set size) trades cost for accuracy;
its highest value is the *target* fidelity, the one whose outcome the campaign optimises. The
agent picks *where* to measure with its acquisition evaluated at the target fidelity, then
picks *how well* to measure there with :func:`choose_fidelity`: the fidelity ``s`` that
maximises

    rho(x, s) / cost(x, s),    rho = Cov(f(x, s_t), y(x, s))^2 / (Var f(x, s_t) Var y(x, s))

where ``f(x, s_t)`` is the latent outcome at the target fidelity ``s_t`` and ``y(x, s)`` a
real measurement at fidelity ``s`` (latent plus the measurement noise the world model
expects there). ``rho`` is the fraction of the target's posterior variance one measurement at
``s`` would remove (the squared correlation; 1 for a noise-free measurement at the target), so
the ratio is variance removed per unit cost, the quantity cost-aware multi-fidelity methods
trade (cf. the cost-weighted fidelity choice of BoTorch's multi-fidelity knowledge gradient,
which this replaces by a closed form). A lower fidelity wins when it is cheap and still
informative: when the measurement noise it adds is small against what the model does not yet
know, or when its bias (a fidelity dimension the model has learned to matter) is small. Fixed
costs per experiment (start-up, equilibration) make very short runs poor value, so the choice
is not simply the cheapest fidelity.

When the campaign will run out of experiments before it runs out of budget, an experiment's
real price is also the slot it takes: ``slot_cost`` (the budget left per experiment left) is
added to every fidelity's predicted cost, which moves the choice to longer, more informative
runs exactly when cheap ones would leave budget unspent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciwm.world_model import WorldModel

#: Unit-cube distance from 1 within which a fidelity value counts as the target.
TARGET_TOL = 1e-9

#: Points of the fidelity grid searched by :func:`choose_fidelity` (unit-cube values).
GRID_SIZE = 17


@dataclass(frozen=True)
class FidelityChoice:
    """The fidelity chosen for one experiment.

    Attributes:
        x: The unit-cube point, a ``d`` tensor, with its fidelity columns set.
        information: ``rho`` at the choice, in [0, 1].
        cost: Predicted median cost at the choice.
    """

    x: Tensor
    information: float
    cost: float


def project_to_target(X: Tensor, dims: Sequence[int]) -> Tensor:
    """Set the fidelity columns ``dims`` of ``X`` (``... x d``) to the target (1 in the cube)."""
    X = X.clone()
    if dims:
        X[..., list(dims)] = 1.0
    return X


def at_target_fidelity(X: Tensor, dims: Sequence[int]) -> Tensor:
    """Which rows of ``X`` (``n x d``) lie at the target fidelity in every column ``dims``
    (an ``n`` bool tensor; all true without fidelity columns)."""
    if not dims:
        return torch.ones(X.shape[:-1], dtype=torch.bool)
    return (X[..., list(dims)] >= 1.0 - TARGET_TOL).all(-1)


def information_fraction(
    model: WorldModel, outcome: str, X_target: Tensor, X_query: Tensor
) -> Tensor:
    """``rho``: share of the target's posterior variance one measurement at a query removes.

    Args:
        model: A fitted world model.
        outcome: The outcome optimised.
        X_target: An ``n x d`` tensor of points at the target fidelity.
        X_query: An ``n x d`` tensor of the same points at the fidelities considered.

    Returns:
        An ``n`` tensor in [0, 1]. When the model's posterior is not joint over points, the
        latent outcome is taken to be the same at every fidelity (correlation 1), so only the
        measurement noise at the query lowers ``rho``.
    """
    X = torch.stack([X_target, X_query], dim=-2)  # n x 2 x d
    with torch.no_grad():
        post = model.posterior(X, outcome)
        var = post.variance.squeeze(-1).clamp_min(1e-12)  # n x 2
        cov = _cross_covariance(post)
        if cov is None:
            cov = (var[:, 0] * var[:, 1]).sqrt()
        noise = model.observation_std(X_query, outcome)
    noise_var = torch.zeros_like(var[:, 1]) if noise is None else noise.reshape(-1) ** 2
    rho = cov**2 / (var[:, 0] * (var[:, 1] + noise_var))
    return rho.clamp(0.0, 1.0)


def choose_fidelity(
    model: WorldModel,
    outcome: str,
    x: Tensor,
    dims: Sequence[int],
    grid_size: int = GRID_SIZE,
    slot_cost: float = 0.0,
) -> FidelityChoice:
    """The fidelity of ``x`` that buys the most target-fidelity information per unit cost.

    Args:
        model: A fitted world model.
        outcome: The outcome optimised.
        x: A ``d`` unit-cube point (its fidelity columns are ignored).
        dims: Fidelity columns; with several, they move together along the grid.
        grid_size: Fidelity values tried, evenly spaced over the unit interval.
        slot_cost: Price of the experiment slot itself, in cost units, added to each
            fidelity's predicted cost (0: the budget is the only limit).

    Returns:
        The choice; among equal scores the higher fidelity wins.
    """
    return choose_fidelities(model, outcome, x.unsqueeze(0), dims, grid_size, slot_cost)[0]


def choose_fidelities(
    model: WorldModel,
    outcome: str,
    X: Tensor,
    dims: Sequence[int],
    grid_size: int = GRID_SIZE,
    slot_cost: float = 0.0,
) -> list[FidelityChoice]:
    """:func:`choose_fidelity` for each row of ``X`` (``m x d``), in one batched pass.

    The ``m x grid_size`` candidate measurements share one posterior, one cost posterior
    and one noise call, so choosing fidelities for a ranked list of points costs about as
    much as choosing one.

    Returns:
        ``m`` choices, in the order of ``X``.
    """
    if not dims:
        return [FidelityChoice(x, 1.0, float("nan")) for x in X]
    m, d = X.shape
    grid = torch.linspace(0.0, 1.0, grid_size, dtype=X.dtype)
    X_query = X.unsqueeze(1).repeat(1, grid_size, 1)  # m x g x d
    X_query[:, :, list(dims)] = grid.reshape(1, -1, 1)
    X_query = model.space.round_trip(X_query.reshape(m * grid_size, d))
    X_target = project_to_target(X_query, dims)
    rho = information_fraction(model, outcome, X_target, X_query).reshape(m, grid_size)
    with torch.no_grad():
        log_cost = model.log_cost_posterior(X_query.unsqueeze(-2)).mean.reshape(m, grid_size)
    score = rho.log() - torch.log(log_cost.exp() + max(0.0, float(slot_cost)))
    best = grid_size - 1 - torch.argmax(score.flip(-1), dim=-1)  # ties: the higher fidelity
    X_query = X_query.reshape(m, grid_size, d)
    return [
        FidelityChoice(X_query[i, b], float(rho[i, b]), float(log_cost[i, b].exp()))
        for i, b in enumerate(best.tolist())
    ]


def _cross_covariance(post: object) -> Tensor | None:
    """``Cov`` of the two points of each ``2``-point batch, if the posterior is joint."""
    for attr in ("distribution", "mvn"):
        dist = getattr(post, attr, None)
        matrix = getattr(dist, "covariance_matrix", None)
        if isinstance(matrix, Tensor) and matrix.shape[-2:] == (2, 2):
            return matrix[..., 0, 1]
    return None
