"""A GP warm-started from an earlier campaign: the old GP as prior mean, learnt on the new data.

For one outcome, with ``g`` the exact GP fitted on the earlier campaign's results (its targets
standardised by their own mean and std, ``m(x)`` its posterior mean in those units), the new
campaign's results ``z`` (standardised with the same constants) are modelled as

    z(x) = beta * m(x) + f(x) + noise,    beta ~ N(1, s^2),    f ~ GP(0, k),

i.e. a GP with prior mean ``m(x)`` and kernel ``k(x, x') + s^2 m(x) m(x')``. With no new
result the model is the old GP; as new results arrive the posterior of ``beta`` says how much
of the old campaign carries over (near 1 for a related campaign, towards 0 for an unrelated
one, where ``f`` then models the new results alone), and ``f`` learns what differs. With fewer
than :data:`FIT_FROM` new results the hyperparameters stay at the old GP's (lengthscales,
noise; ``f``'s scale 1, ``s^2`` = :data:`BETA_VARIANCE`); from then on they are fitted by
marginal likelihood, starting there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import gpytorch
import torch
from botorch.models import SingleTaskGP
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.means import Mean
from torch import Tensor

from surrogates.gp_cache import cached
from surrogates.gp_fit import fit_or_restore
from surrogates.gp_scalable import hyperparameters

#: New results from which the warm GP's hyperparameters are fitted (below: the old GP's).
FIT_FROM = 5
#: Prior variance of the weight of the old campaign's mean (its prior mean is 1).
BETA_VARIANCE = 1.0

MeanFn = Callable[[Tensor], Tensor]


def old_mean(old: SingleTaskGP) -> MeanFn:
    """``X (... x n x d) -> ... x n``: the old GP's posterior mean in its standardised units."""

    def fn(X: Tensor) -> Tensor:
        cache = cached(old)
        if cache is not None:
            return cache.latent_mean(X)
        with gpytorch.settings.skip_posterior_variances(True):
            return old(X).mean

    return fn


class PriorMean(Mean):
    """A constant-free mean: the old campaign's standardised mean (no parameters)."""

    def __init__(self, fn: MeanFn) -> None:
        super().__init__()
        self._fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(x)


class PriorMeanKernel(Kernel):
    """``s^2 m(x) m(x')``: the uncertainty of the old mean's weight, as a rank-one kernel."""

    def __init__(self, fn: MeanFn, variance: float = BETA_VARIANCE) -> None:
        super().__init__()
        self._fn = fn
        self.register_parameter("raw_variance", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_variance", Positive())
        self.initialize(
            raw_variance=self.raw_variance_constraint.inverse_transform(
                torch.tensor([float(variance)])
            )
        )

    @property
    def variance(self) -> Tensor:
        return self.raw_variance_constraint.transform(self.raw_variance)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params: object) -> Tensor:
        m1 = self._fn(x1)
        m2 = m1 if x1 is x2 else self._fn(x2)
        if diag:
            return self.variance * m1 * m2
        return self.variance * m1.unsqueeze(-1) * m2.unsqueeze(-2)


def fit_warm_gp(
    old: SingleTaskGP,
    X: Tensor,
    Y: Tensor,
    seed: int,
    state: Mapping[str, Tensor] | None = None,
    what: str = "an outcome",
) -> SingleTaskGP:
    """The new campaign's GP of one outcome, with ``old`` as its prior.

    Args:
        old: The exact GP fitted on the earlier campaigns' results (eval mode).
        X: A ``n x d`` tensor of the new campaign's inputs (``n >= 1``).
        Y: A ``n x 1`` tensor of its targets, in the outcome's units.
        seed: Seed of the hyperparameter fit.
        state: A saved ``state_dict`` to restore instead of fitting.
        what: The outcome's name, for messages.

    Returns:
        A ``SingleTaskGP`` in eval mode whose posterior is in the outcome's units.
    """
    transform = copy.deepcopy(old.outcome_transform).eval()
    Z, _ = transform(Y)
    fn = old_mean(old)
    d = X.shape[-1]
    base = ScaleKernel(get_covar_module_with_dim_scaled_prior(ard_num_dims=d))
    covar = base + PriorMeanKernel(fn)
    model = SingleTaskGP(
        X,
        Z,
        likelihood=copy.deepcopy(old.likelihood),
        covar_module=covar,
        mean_module=PriorMean(fn),
        outcome_transform=None,
    ).to(X)
    model.outcome_transform = transform
    object.__setattr__(model, "sciwm_prior", old)  # not a submodule: its state is not ours
    old_h = hyperparameters(old)
    with torch.no_grad():
        if "raw_lengthscale" in old_h:
            base.base_kernel.raw_lengthscale.copy_(old_h["raw_lengthscale"])
        base.outputscale = torch.tensor(1.0, dtype=X.dtype)
    for p in old.parameters():
        p.requires_grad_(False)
    if state is not None or len(X) >= FIT_FROM:
        return fit_or_restore(model, state, seed, what=f"the warm-started GP of {what}")
    model.eval()
    return model


def is_warm(model: SingleTaskGP) -> bool:
    """Whether ``model`` came from :func:`fit_warm_gp` (its prior GP is ``sciwm_prior``)."""
    return isinstance(model.mean_module, PriorMean)
