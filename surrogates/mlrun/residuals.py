"""Residual GPs: the campaign's own runs correct the pretrained predictor.

:class:`ResidualGPs` holds, per target (accuracy, log cost), a GP on the unit cube fitted to
the residuals of the pretrained prediction once ``min_points`` real runs are back, and combines
the predictor's Gaussian with the GP's posterior into one joint Gaussian.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import gpytorch
import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from sciwm.space import SearchSpace
from surrogates.gp_fit import fit_or_restore, hyperparameters, load_hyperparameters
from surrogates.marginal import marginals
from surrogates.mlrun.landmarks import OWN_DECAY

#: Growth of a target's residuals since its last fit from botorch's default start after which
#: its GP is fitted from that start again instead of from the last fit's hyperparameters.
COLD_REFIT_GROWTH = 2.0
#: Residuals from which a target's refit keeps its last fit's hyperparameters, conditioning
#: the GP on the new runs without optimising, until its runs have grown
#: :data:`REOPTIMISE_GROWTH`-fold since that fit. With this many runs a few more move the
#: hyperparameters little, and an optimisation of a GP on a hundred runs takes ~0.5 s.
REUSE_FROM = 40
REOPTIMISE_GROWTH = 1.1


class ResidualGPs:
    """GPs on the residuals of a prior, one per target index.

    Args:
        space: The campaign's search space (categorical parameters get a categorical kernel).
        min_points: Residuals needed before a target gets a GP.
        seed: Seed of the GP fits.
        size_param: The parameter that holds the training size, along which a learner's
            own residual carries over (:meth:`prior_share`); ``None``: the space's numeric
            fidelity parameters.
    """

    def __init__(
        self, space: SearchSpace, min_points: int, seed: int, size_param: str | None = None
    ) -> None:
        self.space = space
        self.min_points = int(min_points)
        self.seed = int(seed)
        self.gps: dict[int, SingleTaskGP] = {}
        #: Residuals each target had at its last fit from botorch's default start, and at
        #: its last hyperparameter optimisation of any start.
        self._cold_n: dict[int, int] = {}
        self._opt_n: dict[int, int] = {}
        #: Hyperparameters to start a target's first fit from, with the runs of the parent's
        #: last cold fit (:meth:`inherit`); targets fitted from a parent's hyperparameters.
        self._inherited: dict[int, tuple[dict[str, Tensor], int]] = {}
        self._from_parent: set[int] = set()
        if size_param is not None:
            self._sizes = [space.names.index(size_param)]
        else:
            self._sizes = [
                i for i, p in enumerate(space.parameters) if p.fidelity and p.kind != "categorical"
            ]

    @property
    def targets(self) -> list[int]:
        """Indices of the targets that have a GP."""
        return sorted(self.gps)

    def fit(self, rows: Mapping[int, tuple[Tensor, Tensor]]) -> None:
        """Fit one GP per target with at least ``min_points`` residuals (the others get none).

        A target that had a GP starts its hyperparameter fit from that GP's (a warm start:
        a refit after a few more runs takes a few optimiser steps instead of a hundred),
        until its runs have grown :data:`COLD_REFIT_GROWTH`-fold since its last fit from
        botorch's defaults, which then runs again: a warm start may keep a basin of the
        likelihood that more data would leave (seen in about one refit in seven). From
        :data:`REUSE_FROM` runs on, a refit within :data:`REOPTIMISE_GROWTH` times the runs
        of the last optimisation keeps its hyperparameters and only conditions on the runs.

        Args:
            rows: Target index -> ``(X, r)``: a ``n x d`` tensor of unit-cube points and the
                ``n`` residuals (observed minus prior mean) there.
        """
        warm = {j: hyperparameters(gp) for j, gp in self.gps.items()}  # the last fit's
        self.gps = {}
        for j, (X, r) in rows.items():
            n = len(r)
            if n < self.min_points:
                continue
            if j in self._inherited:  # a copy's first fit: from its parent's larger fit
                warm[j], self._cold_n[j] = self._inherited.pop(j)
                self._from_parent.add(j)
            n0 = self._cold_n.get(j, 0)
            # cold: no earlier fit, runs doubled since the last cold fit, or fewer runs than
            # that fit had (other data) unless they came with the parent's hyperparameters
            cold = (
                j not in warm
                or n >= COLD_REFIT_GROWTH * n0
                or (n < n0 and j not in self._from_parent)
            )
            if cold:
                self._cold_n[j] = n
                self._from_parent.discard(j)
            n_opt = self._opt_n.get(j, 0)
            keep = not cold and n >= REUSE_FROM and n_opt <= n < REOPTIMISE_GROWTH * n_opt
            if not keep:
                self._opt_n[j] = n
            self.gps[j] = self._gp(
                X.double(),
                r.double().unsqueeze(-1),
                warm=None if cold else warm[j],
                optimise=not keep,
            )

    def inherit(self, parent: ResidualGPs) -> None:
        """Start this (unfitted) copy's next fit from ``parent``'s GPs' hyperparameters.

        A restarted search's world model is fitted on the new epoch's few results; starting
        from hyperparameters fitted on the whole campaign spares it a fit from botorch's
        defaults on a handful of points (the slowest fits, and the least determined) until
        its runs reach :data:`COLD_REFIT_GROWTH` times those of the parent's last such fit.
        """
        self._inherited = {
            j: (hyperparameters(gp), parent._cold_n.get(j, len(gp.train_targets)))
            for j, gp in parent.gps.items()
        }

    def _gp(
        self,
        X: Tensor,
        Y: Tensor,
        state: Mapping[str, Tensor] | None = None,
        warm: Mapping[str, Tensor] | None = None,
        optimise: bool = True,
    ) -> SingleTaskGP:
        """A GP on residuals; categorical parameters get a categorical kernel. Its
        hyperparameters are ``state``'s, fitted (from ``warm``, if given), or, with
        ``optimise`` false, ``warm``'s as they are.

        With ``MixedSingleTaskGP`` a residual learnt on one learner is not smeared onto the
        learners next to it in the encoding order (they are not "near" each other).
        """
        cat = [i for i, p in enumerate(self.space.parameters) if p.kind == "categorical"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cat and len(cat) < self.space.dim:
                model = MixedSingleTaskGP(X, Y, cat_dims=cat, outcome_transform=Standardize(m=1))
            else:
                model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
            if not optimise and warm is not None and state is None:
                return load_hyperparameters(model, warm)
            return fit_or_restore(model, state, self.seed, "the residual GP", warm=warm)

    def combine(
        self, X: Tensor, j: int, mean: Tensor, var: Tensor, noise: bool = False
    ) -> MultivariateNormal:
        """Joint Gaussian of target ``j``: the prior's plus the residual GP's, if any.

        Args:
            X: A ``batch x q x d`` tensor of unit-cube points.
            j: Target index.
            mean, var: ``batch x q`` tensors: the prior's mean and variance at ``X``.
            noise: Include the GP's observation noise.
        """
        gp = self.gps.get(j)
        if gp is None:
            return MultivariateNormal(mean, torch.diag_embed(var.clamp_min(1e-12)))
        mvn = gp.posterior(X.to(torch.double), observation_noise=noise).distribution
        cov = mvn.covariance_matrix.to(X.dtype)
        # jitter: candidate batches hold near-duplicates (pending points, snapped sizes)
        diag = cov.diagonal(dim1=-2, dim2=-1)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        cov = cov + eye * (1e-6 * diag.mean(-1, keepdim=True).unsqueeze(-1) + 1e-9)
        # A category (e.g. a learner) no real run has tried keeps the prior's uncertainty: a
        # GP fitted on a handful of runs cannot know how it differs; one tried only at other
        # fidelities keeps part of it (:meth:`prior_share`).
        share = self.prior_share(X, gp.train_inputs[0]).to(X.dtype)
        cov = cov + torch.diag_embed(var.clamp_min(0) * share)
        return MultivariateNormal(mvn.mean.to(X.dtype) + mean, cov)

    def marginal(
        self, X: Tensor, j: int, mean: Tensor, var: Tensor, noise: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Each point's own Gaussian of target ``j``, as :meth:`combine` gives it for a
        ``n x 1 x d`` batch (one point per batch), without any covariance between points:
        only the diagonal of the GP's predictive covariance is computed
        (:func:`~surrogates.marginal.marginals`).

        Args:
            X: A ``n x d`` tensor of unit-cube points.
            j: Target index.
            mean, var: ``n`` tensors: the prior's mean and variance at ``X``.
            noise: Include the GP's observation noise.

        Returns:
            ``(mean, var)``: two ``n`` tensors, the moments of ``combine(X.unsqueeze(-2),
            ...)`` (its variance floored at gpytorch's ``min_variance``, as
            ``MultivariateNormal.variance`` floors it).
        """
        floor = gpytorch.settings.min_variance.value(X.dtype)
        gp = self.gps.get(j)
        if gp is None:
            return mean, var.clamp_min(1e-12).clamp_min(floor)
        gp_mean, gp_var = marginals(gp, X.to(torch.double), observation_noise=noise)
        gp_mean, gp_var = gp_mean.to(X.dtype), gp_var.to(X.dtype)
        gp_var = gp_var + (1e-6 * gp_var + 1e-9)  # combine()'s jitter for a batch of one
        share = self.prior_share(X, gp.train_inputs[0]).to(X.dtype)
        total = gp_var + var.clamp_min(0) * share
        return gp_mean + mean, total.clamp_min(floor)

    def prior_share(self, X: Tensor, train_X: Tensor) -> Tensor:
        """``batch x q`` share of the prior's variance that a point keeps next to the GP's.

        1 for a categorical value no real run has tried. Otherwise, with a training-size
        parameter (``size_param``, or a numeric fidelity), ``1 - own_weight(gap)^2``, where
        ``gap`` is the log2 ratio between the point's size and the nearest one a real run of
        the same categories reached (:func:`~surrogates.mlrun.landmarks.own_weight`): a
        residual learnt on a learner's curve up to a tenth of the asked size carries over
        only partly, and the GP cannot know how much (the own-curve shift reproduces every
        run it is fitted on, so its residuals there are zero and it shrinks its own variance
        to nothing). 0 at a size already run.
        """
        unseen = self._unseen_categories(X, train_X)
        if not self._sizes:
            return unseen.to(X.dtype)
        cat = [i for i, p in enumerate(self.space.parameters) if p.kind == "categorical"]
        flat = X.detach().reshape(-1, X.shape[-1])
        tx = train_X.detach().reshape(-1, train_X.shape[-1]).to(flat.dtype)
        same = torch.ones(flat.shape[0], tx.shape[0], dtype=torch.bool)
        for i in cat:
            same &= (flat[:, i : i + 1] - tx[:, i].unsqueeze(0)).abs() < 1e-6
        gap = torch.zeros(flat.shape[0], tx.shape[0], dtype=flat.dtype)
        for i in self._sizes:
            gap = gap + (self._log2(i, flat[:, i]).unsqueeze(1) - self._log2(i, tx[:, i])).abs()
        gap = torch.where(same, gap, torch.full_like(gap, float("inf")))
        nearest = (
            gap.min(dim=1).values if tx.shape[0] else torch.full_like(flat[:, 0], float("inf"))
        )
        weight = OWN_DECAY ** (nearest / math.log2(10.0))
        share = (1.0 - weight**2).clamp(0.0, 1.0).reshape(X.shape[:-1])
        return torch.where(unseen, torch.ones_like(share), share)

    def _log2(self, i: int, u: Tensor) -> Tensor:
        """log2 of parameter ``i``'s value at unit coordinates ``u``."""
        p = self.space.parameters[i]
        low, high = float(p.low), float(p.high)
        if p.log:
            return math.log2(low) + u.clamp(0, 1) * math.log2(high / low)
        return torch.log2((low + u.clamp(0, 1) * (high - low)).clamp_min(1e-12))

    def _unseen_categories(self, X: Tensor, train_X: Tensor) -> Tensor:
        """``batch x q`` flags: a categorical value of ``X`` absent from ``train_X``."""
        out = torch.zeros(X.shape[:-1], dtype=torch.bool)
        for i, p in enumerate(self.space.parameters):
            if p.kind != "categorical":
                continue
            k = len(p.choices) - 1
            seen = torch.zeros(k + 1, dtype=torch.bool)
            seen[(train_X[..., i].clamp(0, 1) * k).round().long().flatten()] = True
            idx = (X[..., i].detach().clamp(0, 1) * k).round().long()
            out |= ~seen[idx]
        return out

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Tensor]:
        """Tensors that rebuild the fitted GPs (training data and hyperparameters) and their
        refit schedule (the runs of each target's last default-start fit and optimisation)."""
        tensors = {}
        for j, gp in self.gps.items():
            tensors[f"gp{j}.X"] = gp.train_inputs[0].detach().clone()
            Y, _ = gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))
            tensors[f"gp{j}.Y"] = Y.detach().clone()
            for k, v in gp.state_dict().items():
                tensors[f"gp{j}.state.{k}"] = v.detach().clone()
            for name, runs in (("cold_n", self._cold_n), ("opt_n", self._opt_n)):
                if j in runs:
                    tensors[f"gp{j}.{name}"] = torch.tensor(runs[j])
        return tensors

    def load_state(self, tensors: Mapping[str, Tensor], targets: list[int]) -> None:
        """Inverse of :meth:`state` for the GPs of ``targets``: a loaded model's next refit
        follows the schedule its fits had (a state saved without one: a default-start fit)."""
        self.gps = {}
        for j in targets:
            j = int(j)
            prefix = f"gp{j}.state."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            self.gps[j] = self._gp(tensors[f"gp{j}.X"], tensors[f"gp{j}.Y"], state)
            for name, runs in (("cold_n", self._cold_n), ("opt_n", self._opt_n)):
                if f"gp{j}.{name}" in tensors:
                    runs[j] = int(tensors[f"gp{j}.{name}"])


__all__ = ["ResidualGPs"]
