"""Fitting or restoring an exact botorch GP: the one step every GP-based world model shares."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models.gpytorch import GPyTorchModel
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from sciwm.errors import WorldModelError

#: L-BFGS-B settings of a warm-started fit: it starts next to an optimum, so a few dozen
#: steps reach it (a fit from botorch's defaults takes 50-150).
WARM_OPTIMIZER = {"options": {"maxiter": 30}}


def hyperparameters(model: GPyTorchModel) -> dict[str, Tensor]:
    """``model``'s fitted hyperparameters (its raw parameters, without constraint bounds,
    priors or outcome-transform statistics), to warm-start the next fit with."""
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if k.rsplit(".", 1)[-1].startswith("raw_") and "constraint" not in k
    }


def load_hyperparameters(model: GPyTorchModel, hyper: Mapping[str, Tensor]) -> GPyTorchModel:
    """Load those of ``hyper`` (:func:`hyperparameters` of an earlier fit) whose names and
    shapes match ``model``'s into it, without fitting; ``model`` keeps its own data and
    outcome-transform statistics.

    Returns:
        ``model``, in eval mode.
    """
    own = model.state_dict()
    model.load_state_dict(
        {k: v for k, v in hyper.items() if k in own and own[k].shape == v.shape}, strict=False
    )
    model.eval()
    return model


def fit_or_restore(
    model: GPyTorchModel,
    state: Mapping[str, Tensor] | None,
    seed: int,
    what: str = "a GP",
    warm: Mapping[str, Tensor] | None = None,
) -> GPyTorchModel:
    """Load saved hyperparameters into ``model``, or fit them by marginal likelihood.

    Args:
        model: A freshly built exact GP (train data already attached).
        state: A saved ``state_dict`` to restore, or ``None`` to fit.
        seed: Seed of the fit (restarts are random).
        what: Name used in the error message.
        warm: :func:`hyperparameters` of an earlier fit of the same kind of GP to start the
            fit from (those whose names and shapes match), with at most
            :data:`WARM_OPTIMIZER` steps: a refit after a few more results then takes a few
            dozen optimiser steps instead of a hundred, as Ax's warm-started refits do.

    Returns:
        ``model``, in eval mode.

    Raises:
        WorldModelError: If fitting fails.
    """
    if state is not None:
        model.load_state_dict(dict(state))
    else:
        if warm:
            load_hyperparameters(model, warm).train()
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with torch.random.fork_rng(), warnings.catch_warnings():
            torch.manual_seed(seed)
            warnings.simplefilter("ignore")
            try:
                if warm:
                    fit_gpytorch_mll(mll, optimizer_kwargs=WARM_OPTIMIZER)
                else:
                    fit_gpytorch_mll(mll)
            except Exception as exc:  # noqa: BLE001 - botorch raises several kinds
                raise WorldModelError(f"fitting {what} failed: {exc}") from exc
    model.eval()
    return model
