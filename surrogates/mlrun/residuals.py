"""Residual GPs: the campaign's own runs correct the pretrained predictor.

:class:`ResidualGPs` is the part of :class:`~surrogates.mlrun.model.MLRunWorldModel` that,
once ``min_points`` real runs are back, fits a GP on the unit cube to the residuals of the
pretrained prediction (accuracy and log cost) and combines the two into one Gaussian.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from surrogates.gp_fit import fit_or_restore
from surrogates.mlrun.heads import Inputs, cpu_threads
from surrogates.mlrun.predictor import RunPredictor


class ResidualGPs:
    """Mixin: residual GPs on top of the predictor (needs :class:`RunMapping`'s methods)."""

    _gps: dict[int, SingleTaskGP]
    _predictor: RunPredictor | None
    cfg: dict
    outcomes: list[str]

    def _inputs_from_X(self, X: Tensor) -> Inputs:  # provided by RunMapping
        raise NotImplementedError

    def _require(self) -> RunPredictor:  # provided by the world model
        raise NotImplementedError

    def _fit_residuals(self, completed: list, costed: list) -> None:
        """Residual GPs of the first outcome and of log cost, on the unit cube."""

        self._gps = {}
        sets = {0: [(e, o.outcomes.get(self.outcomes[0])) for e, o in completed]}
        sets[1] = [(e, math.log(o.cost)) for e, o in costed]
        for j, rows in sets.items():
            rows = [(e, v) for e, v in rows if v is not None and math.isfinite(v)]
            if len(rows) < self.cfg["min_points"]:
                continue
            X = self.space.encode([e.parameters for e, _ in rows])
            with torch.no_grad():
                mean, _ = self._predictor_moments(X)
            r = torch.tensor([v for _, v in rows], dtype=torch.double) - mean[:, j].double()
            self._gps[j] = self._residual_gp(X, r.unsqueeze(-1))

    def _residual_gp(
        self, X: Tensor, Y: Tensor, state: Mapping[str, Tensor] | None = None
    ) -> SingleTaskGP:
        """A GP on residuals; categorical parameters get a categorical kernel.

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
        return fit_or_restore(model, state, int(self.cfg["seed"]), "the residual GP")

    def _predictor_moments(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Calibrated ``(mean, std)`` of the predictor, ``n x t``, differentiable in ``X``."""
        pred = self._predictor
        assert pred is not None
        with cpu_threads(1):  # tiny heads: one thread is ~10x faster than two busy ones
            return pred.predict_standardised(self._inputs_from_X(X))

    def _posterior(self, X: Tensor, j: int, noise: bool = False) -> MultivariateNormal:
        """Joint Gaussian of target ``j`` over the last-but-one dim of ``X`` (``b x q x d``)."""
        self._require()
        batch = X.shape[:-1]
        flat = X.reshape(-1, X.shape[-1])
        mean, std = self._predictor_moments(flat)
        mean = mean[:, j].to(X.dtype).reshape(batch)
        var = (std[:, j] ** 2).to(X.dtype).reshape(batch)
        gp = self._gps.get(j)
        if gp is not None:
            post = gp.posterior(X.to(torch.double), observation_noise=noise)
            mvn = post.distribution
            cov = mvn.covariance_matrix.to(X.dtype)
            # jitter: candidate batches hold near-duplicates (pending points, snapped sizes)
            diag = cov.diagonal(dim1=-2, dim2=-1)
            eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
            cov = cov + eye * (1e-6 * diag.mean(-1, keepdim=True).unsqueeze(-1) + 1e-9)
            # A category (e.g. a learner) no real run has tried keeps the pretrained model's
            # uncertainty: a GP fitted on a handful of runs cannot know how it differs.
            unseen = self._unseen_categories(X, gp.train_inputs[0]).to(X.dtype)
            cov = cov + torch.diag_embed(var.clamp_min(0) * unseen)
            return MultivariateNormal(mvn.mean.to(X.dtype) + mean, cov)
        return MultivariateNormal(mean, torch.diag_embed(var.clamp_min(1e-12)))

    def _unseen_categories(self, X: Tensor, train_X: Tensor) -> Tensor:
        """``batch_shape x q`` flags: a categorical value of ``X`` absent from ``train_X``."""
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
