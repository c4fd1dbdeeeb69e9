"""Where a fitted GP answers outside what it was trained on (``Prediction.extrapolating``).

A candidate is flagged when a numeric parameter lies beyond the observed range by more than
:data:`RANGE_LENGTHSCALES` of its lengthscale, or when its latent posterior std is above
:data:`EXTRAPOLATION_RATIO` of the prior's (far from every observation, in lengthscale units).
"""

from __future__ import annotations

import torch
from botorch.models import SingleTaskGP
from torch import Tensor

from sciwm.space import SearchSpace
from surrogates.marginal import mean_std

#: Posterior std above this fraction of the prior std marks a query as extrapolating.
EXTRAPOLATION_RATIO = 0.9
#: A numeric parameter beyond the observed range by more than this many of its lengthscales
#: marks a query as extrapolating.
RANGE_LENGTHSCALES = 0.5


def extrapolation_reasons(model: SingleTaskGP, X: Tensor, space: SearchSpace) -> list[str | None]:
    """Why each of ``n`` unit-cube points is outside what ``model`` was trained on.

    Args:
        model: A fitted single-output GP (eval mode) on ``space``'s unit cube.
        X: A ``n x d`` tensor of unit-cube points.
        space: The search space (names and decoded values for the messages).

    Returns:
        ``n`` reasons, ``None`` where the point is inside the model's data.
    """
    train = model.train_inputs[0].reshape(-1, X.shape[-1])
    lo, hi = train.min(0).values, train.max(0).values
    kern = model.covar_module
    ls = getattr(getattr(kern, "base_kernel", kern), "lengthscale", None)
    ls = torch.ones(X.shape[-1]) if ls is None else ls.detach().reshape(-1)
    ls = ls.to(X).expand(X.shape[-1])
    far = far_from_data(model, X).tolist()
    nearest = (torch.cdist(X / ls, train / ls).min(-1).values).tolist()
    margin = RANGE_LENGTHSCALES * ls
    outside = (((lo - X) > margin) | ((X - hi) > margin)).tolist()  # n x d, whole columns
    out: list[str | None] = []
    for i, x in enumerate(X):
        why = None
        for j, p in enumerate(space.parameters):
            if p.kind == "categorical":
                continue
            if outside[i][j]:
                seen = space.decode(torch.stack([lo, hi]))
                why = (
                    f"{p.name}={space.decode(x.unsqueeze(0))[0][p.name]:g} is outside "
                    f"the observed {seen[0][p.name]:g}-{seen[1][p.name]:g}"
                )
                break
        if why is None and bool(far[i]):
            why = f"{nearest[i]:.1f} lengthscales from the nearest observation"
        out.append(why)
    return out


def far_from_data(model: SingleTaskGP, X: Tensor) -> Tensor:
    """``n`` flags: latent posterior std above :data:`EXTRAPOLATION_RATIO` of the prior's."""
    _, std = mean_std(model, X)
    kern = model.covar_module
    if hasattr(kern, "outputscale"):
        prior_var = kern.outputscale
    else:  # a stationary kernel without a scale: k(x, x) is the same everywhere
        prior_var = kern(X[:1], X[:1]).to_dense().squeeze()
    std_y = model.outcome_transform.stdvs.squeeze()
    ratio = std / (prior_var.sqrt() * std_y)
    return ratio > EXTRAPOLATION_RATIO


__all__ = ["EXTRAPOLATION_RATIO", "RANGE_LENGTHSCALES", "extrapolation_reasons", "far_from_data"]
