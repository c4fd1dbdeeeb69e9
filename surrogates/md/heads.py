"""Fast heads: Bayesian linear regression for observables (property head) and log cost.

Both are closed-form Gaussian posteriors over the weights of a small feature map of the
unit-cube inputs, so :meth:`BayesLinear.posterior` returns an exact joint Gaussian over any
batch of points and botorch acquisitions work on it directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from botorch.posteriors import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

Features = Callable[[Tensor], Tensor]


def polynomial_features(dim: int | None, degree: int = 2) -> Features:
    """``[1, u, u², …]`` of one unit-cube coordinate (or just ``[1]`` when ``dim`` is None).

    Args:
        dim: Index of the coordinate (e.g. the temperature's), or ``None``.
        degree: Highest power.

    Returns:
        A map from ``... x d`` to ``... x (degree + 1)`` (centred at 0.5).
    """

    def phi(X: Tensor) -> Tensor:
        if dim is None:
            return torch.ones(*X.shape[:-1], 1, dtype=X.dtype)
        u = 2.0 * X[..., dim] - 1.0
        return torch.stack([u**k for k in range(degree + 1)], dim=-1)

    return phi


class BayesLinear:
    """``y = φ(x)·w + ε`` with a Gaussian prior on ``w`` and known per-point noise.

    Args:
        features: The feature map ``φ``.
        prior_mean: ``p`` prior mean of the weights.
        prior_std: ``p`` prior standard deviations of the weights.
        noise_std: Noise of a new observation (added by ``predict(observation_noise=True)``).
    """

    def __init__(
        self, features: Features, prior_mean: Tensor, prior_std: Tensor, noise_std: float
    ) -> None:
        self.features = features
        self.mean = prior_mean.double().clone()
        self.cov = torch.diag(prior_std.double() ** 2)
        self.prior_mean, self.prior_cov = self.mean.clone(), self.cov.clone()
        self.noise_std = float(noise_std)

    def update(self, X: Tensor, y: Tensor, noise_std: Tensor) -> None:
        """Condition on observations (from the prior, not cumulatively).

        Args:
            X: ``n x d`` unit-cube inputs.
            y: ``n`` targets.
            noise_std: ``n`` noise standard deviations.
        """
        phi = self.features(X.double())
        w = 1.0 / noise_std.double().clamp_min(1e-6) ** 2
        prior_prec = torch.linalg.inv(self.prior_cov)
        prec = prior_prec + phi.T @ (w.unsqueeze(-1) * phi)
        cov = torch.linalg.inv(prec)
        self.mean = cov @ (prior_prec @ self.prior_mean + phi.T @ (w * y.double()))
        self.cov = 0.5 * (cov + cov.T)

    def posterior(self, X: Tensor, observation_noise: bool = False) -> GPyTorchPosterior:
        """Joint Gaussian of ``φ(X)·w`` at a ``batch x q x d`` tensor (event ``batch x q x 1``)."""
        phi = self.features(X.double())
        mean = phi @ self.mean
        cov = phi @ self.cov @ phi.transpose(-1, -2)
        jitter = (self.noise_std**2 if observation_noise else 0.0) + 1e-10
        cov = cov + jitter * torch.eye(cov.shape[-1], dtype=cov.dtype)
        return GPyTorchPosterior(MultivariateNormal(mean.to(X.dtype), cov.to(X.dtype)))

    def moments(self, X: Tensor, observation_noise: bool = True) -> tuple[Tensor, Tensor]:
        """Marginal mean and std at ``n x d`` points."""
        phi = self.features(X.double())
        mean = phi @ self.mean
        var = ((phi @ self.cov) * phi).sum(-1)
        if observation_noise:
            var = var + self.noise_std**2
        return mean, var.clamp_min(0).sqrt()

    def state(self) -> dict[str, Tensor]:
        """Tensors that restore the posterior."""
        return {"mean": self.mean, "cov": self.cov, "noise": torch.tensor(self.noise_std)}

    def load(self, state: dict[str, Tensor]) -> None:
        """Inverse of :meth:`state`."""
        self.mean, self.cov = state["mean"].double(), state["cov"].double()
        self.noise_std = float(state["noise"])


def openmm_cost_head(features: Features, s_per_ns: float, with_length: bool) -> BayesLinear:
    """Prior of log wall time of an OpenMM run: a fixed start-up cost plus its throughput.

    Args:
        features: ``[1]`` or ``[1, log(length / 1 ns)]`` of the unit-cube inputs.
        s_per_ns: OpenMM wall seconds per simulated ns.
        with_length: Whether ``features`` includes the log length.

    Returns:
        The unconditioned head (observation noise 0.3 in log cost).
    """
    p = 2 if with_length else 1
    overhead = 2.0  # process start, OpenMM import, minimisation, equilibration (s)
    c_short = overhead + s_per_ns * 0.02  # 20 ps
    c_long = overhead + s_per_ns * 1.0  # 1 ns
    slope = (math.log(c_long) - math.log(c_short)) / math.log(1000.0 / 20.0)
    prior_mean = torch.tensor([math.log(c_long), slope][:p])
    return BayesLinear(features, prior_mean, torch.tensor([0.5, 0.15][:p]), noise_std=0.3)
