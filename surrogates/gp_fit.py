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


def fit_or_restore(
    model: GPyTorchModel, state: Mapping[str, Tensor] | None, seed: int, what: str = "a GP"
) -> GPyTorchModel:
    """Load saved hyperparameters into ``model``, or fit them by marginal likelihood.

    Args:
        model: A freshly built exact GP (train data already attached).
        state: A saved ``state_dict`` to restore, or ``None`` to fit.
        seed: Seed of the fit (restarts are random).
        what: Name used in the error message.

    Returns:
        ``model``, in eval mode.

    Raises:
        WorldModelError: If fitting fails.
    """
    if state is not None:
        model.load_state_dict(dict(state))
    else:
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with torch.random.fork_rng(), warnings.catch_warnings():
            torch.manual_seed(seed)
            warnings.simplefilter("ignore")
            try:
                fit_gpytorch_mll(mll)
            except Exception as exc:  # noqa: BLE001 - botorch raises several kinds
                raise WorldModelError(f"fitting {what} failed: {exc}") from exc
    model.eval()
    return model
