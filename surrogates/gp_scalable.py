"""The GP world model past its exact limit: an exact GP on a subset of the data.

An exact GP costs ``O(n^3)`` to fit and ``O(n^2)`` per predictive variance, so past a
threshold of observations (``scalable_above``) the GP world model (:mod:`surrogates.gp`)
builds each outcome's and the cost's GP on a subset of ``subset_size`` results
(:func:`subset_indices`): a third with the highest values, a third with the lowest (the
regions an optimiser of either direction searches, kept dense) and a third drawn at random
from the rest (the global picture); the model says so in the log. Its hyperparameters are
then kept and the GP conditioned on up to ``condition_size`` results (:func:`condition_on`,
all of them up to that many): one Cholesky factorisation, where the fit's marginal
likelihood refactorised the subset's covariance at every step. Fit and prediction cost stay
those of an exact GP on ``subset_size`` and ``condition_size`` points, whatever the number
of results.

A refit starts from the previous fit's hyperparameters (:func:`hyperparameters` /
:func:`warm_state`), so that the optimiser only corrects them for the new results.

gpytorch's sparse GP (``InducingPointKernel``, SGPR) was measured here first and does not
scale on this stack: one marginal-likelihood step with 256 inducing points took 0.84 s at
1,000 points and 22-27 s at 4,000 (quadratic or worse in ``n``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from torch import Tensor

#: Default observation count above which the GP world model fits on a subset.
DEFAULT_SCALABLE_ABOVE = 500
#: Default size of that subset.
DEFAULT_SUBSET_SIZE = 500
#: Default number of results the subset-fitted GP is then conditioned on.
DEFAULT_CONDITION_SIZE = 1000

#: Hyperparameters carried from one fit to the next, by the last part of their name.
_CARRIED = ("raw_lengthscale", "raw_outputscale", "raw_constant")


def subset_indices(Y: Tensor, size: int, seed: int) -> Tensor:
    """Which of ``n`` results an exact GP of ``size`` points keeps.

    Args:
        Y: A ``n x 1`` tensor of targets.
        size: Points to keep (all of them when ``n <= size``).
        seed: Seed of the random third.

    Returns:
        A sorted ``size`` tensor of row indices: the ``size // 3`` highest targets, the
        ``size // 3`` lowest, and the rest drawn uniformly from the remaining rows.
    """
    n = Y.shape[0]
    if n <= size:
        return torch.arange(n)
    order = torch.argsort(Y.reshape(-1), stable=True)
    third = size // 3
    ends = torch.cat([order[:third], order[n - third :]])
    rest = order[third : n - third]
    gen = torch.Generator().manual_seed(int(seed))
    pick = rest[torch.randperm(len(rest), generator=gen)[: size - 2 * third]]
    return torch.sort(torch.cat([ends, pick])).values


def retarget(model: SingleTaskGP, X: Tensor, Y: Tensor) -> SingleTaskGP:
    """Give a fitted GP (eval mode) the training data ``X`` / ``Y``, its hyperparameters and
    its outcome transform's constants kept.

    Args:
        model: A fitted ``SingleTaskGP`` with an outcome transform.
        X: A ``n x d`` tensor of inputs.
        Y: A ``n x 1`` tensor of targets in the outcome's units (standardised here with the
            model's own constants, in which its hyperparameters are expressed).

    Returns:
        ``model``, in eval mode.
    """
    model.eval()
    with torch.no_grad():
        Z, _ = model.outcome_transform(Y)
    model.set_train_data(inputs=X, targets=Z.squeeze(-1), strict=False)
    return model


def condition_on(model: SingleTaskGP, X: Tensor, Y: Tensor, size: int, seed: int) -> SingleTaskGP:
    """A GP with ``model``'s hyperparameters conditioned on up to ``size`` of the results.

    Fitting hyperparameters costs ``O(m^3)`` per optimiser step, conditioning once: the
    subset GP's hyperparameters (fitted on ``subset_size`` results) then predict from more
    of the data, ``size`` of them chosen by :func:`subset_indices` (all of them when there
    are at most ``size``).

    Args:
        model: The fitted subset GP (eval mode).
        X: A ``n x d`` tensor of every result's inputs.
        Y: A ``n x 1`` tensor of their targets (outcome units).
        size: Most results conditioned on.
        seed: Seed of :func:`subset_indices`.

    Returns:
        A new ``SingleTaskGP`` in eval mode (``model`` when ``size`` is not larger than its
        training set).
    """
    if size <= model.train_inputs[0].shape[-2]:
        return model
    keep = subset_indices(Y, size, seed)
    out = SingleTaskGP(X[keep], Y[keep], outcome_transform=Standardize(m=1))
    out.load_state_dict(model.state_dict())
    return retarget(out, X[keep], Y[keep])


def hyperparameters(model: SingleTaskGP) -> dict[str, Tensor]:
    """The mean, kernel and noise hyperparameters of a fitted GP, by short name."""
    out: dict[str, Tensor] = {}
    for name, value in model.state_dict().items():
        short = name.rsplit(".", 1)[-1]
        if short in _CARRIED:
            out[short] = value.detach().clone()
        elif name.endswith("noise_covar.raw_noise"):
            out["raw_noise"] = value.detach().clone()
    return out


def warm_state(model: SingleTaskGP, previous: Mapping[str, Tensor]) -> bool:
    """Start ``model``'s hyperparameters from a previous fit's (:func:`hyperparameters`).

    Only values of the same shape are carried (a new dimension count starts afresh).

    Returns:
        Whether anything was carried.
    """
    carried = False
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in params.items():
            short = name.rsplit(".", 1)[-1]
            key = "raw_noise" if name.endswith("noise_covar.raw_noise") else short
            if key not in previous:
                continue
            if previous[key].shape == param.shape:
                param.copy_(previous[key])
                carried = True
    return carried
