"""``MDEmulatorWorldModel``: the MD emulator behind the ``WorldModel`` contract.

Three parts, each cheap to query:

* the **emulator** — flow-matching GNNs (:mod:`surrogates.md.emulation`) trained on real
  OpenMM trajectories, loaded from a checkpoint, saved with the model (weights and start
  frames). At :meth:`fit` it rolls out trajectories on a grid of temperatures (once) and
  turns them into pseudo-observations of every observable it can compute, each with an
  uncertainty (ensemble disagreement plus sampling spread, scaled by a factor calibrated
  against held-out real simulations);
* the **property head** — a Bayesian polynomial regression in temperature per observable,
  conditioned on those pseudo-observations *and* on every real observation of the campaign;
  :meth:`posterior` and :meth:`predict` read it, so acquisition functions run in microseconds;
  a real run of finite length adds its own sampling noise (measured on the data set's real
  runs, :meth:`surrogates.md.emulation.Emulation.run_noise_std`);
* the **cost head** — Bayesian linear regression of log wall time on log simulation length,
  with a prior from a fixed start-up overhead plus the OpenMM throughput measured when the
  data set was made.

:meth:`emulate` exposes the rollouts themselves (used by the benchmark and by users who want
trajectories). Settings (``[world_model.settings]``): ``checkpoint``, ``data``,
``temperature`` (parameter name, default ``"temperature"``), ``length`` (fidelity parameter
name, default ``"length_ps"``; may be absent from the space), ``grid`` (temperatures, default 7),
``n_trajectories`` (per grid point, default 32), ``tau_ps`` (default 100), ``rollout_ps``
(length of each emulated trajectory, default 1000), ``relax_ps`` (the corrector's real
simulation after every jump, :mod:`surrogates.md.relax`; default 0.3, 0 turns it off),
``calibration`` (default: the checkpoint's), ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from botorch.posteriors import Posterior
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.md.observables import PER_FRAME
from sciwm.prediction import Estimate, Prediction
from sciwm.space import Parameter, SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from surrogates.md.emulation import Emulation
from surrogates.md.heads import BayesLinear, openmm_cost_head, polynomial_features
from surrogates.md.settings import DEFAULT_CHECKPOINT, MDEmulatorSettings

__all__ = ["DEFAULT_CHECKPOINT", "MDEmulatorSettings", "MDEmulatorWorldModel"]


def _unit_to_value(u: Tensor, p: Parameter) -> Tensor:
    lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
    if p.log:
        return lo * (hi / lo) ** u
    return lo + (hi - lo) * u


class MDEmulatorWorldModel(WorldModel):
    """World model of MD experiments backed by the GNN emulator (see module doc)."""

    name: ClassVar[str] = "md_emulator"
    settings_type: ClassVar[type[MDEmulatorSettings]] = MDEmulatorSettings
    cfg: MDEmulatorSettings

    def __init__(self, space: SearchSpace, outcomes: Sequence[str], **settings: Any) -> None:
        cfg = self.settings_type.from_mapping(settings, space)
        super().__init__(space, outcomes, **settings)
        self.cfg = cfg
        self.t_name, self.l_name = cfg.temperature, cfg.length
        self.t_dim = space.names.index(self.t_name)
        self.l_dim = space.names.index(self.l_name) if self.l_name in space.names else None
        self._emu: Emulation | None = None
        self._grid: dict[str, Tensor] | None = None
        self._heads: dict[str, BayesLinear] = {}
        self._cost: BayesLinear | None = None
        self._train_range: tuple[float, float] | None = None

    # -- the emulator ---------------------------------------------------------------------
    def _load(self) -> Emulation:
        if self._emu is None:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            self._emu = Emulation.from_checkpoint(self.cfg.checkpoint, self.cfg.data).to(device)
        return self._emu

    @property
    def emulation(self) -> Emulation:
        """The emulator ensemble (loaded from the checkpoint on first use)."""
        return self._load()

    @property
    def calibration(self) -> float:
        """Factor on the emulator's standard deviations (calibrated on held-out real runs)."""
        if self.cfg.calibration is not None:
            return float(self.cfg.calibration)
        return float(self._load().meta.get("calibration", 1.0))

    def starts(self, temperature: float, n: int, seed: int = 0) -> Tensor:
        """``n x atoms x 3`` start configurations: training frames at the nearest temperature."""
        return self._load().starts(temperature, n, seed)

    def emulate(
        self,
        temperature: float,
        n_trajectories: int | None = None,
        length_ps: float | None = None,
        tau_ps: float | None = None,
        start: Tensor | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Roll out emulated trajectories at one temperature and estimate the observables.

        Args:
            temperature: Kelvin.
            n_trajectories: Batch size (default: the ``n_trajectories`` setting).
            length_ps: Simulated time per trajectory (default: ``rollout_ps``).
            tau_ps: Jump length (default: ``tau_ps``).
            start: Optional ``B x atoms x 3`` start configurations.
            seed: Noise seed.

        Returns:
            See :meth:`surrogates.md.emulation.Emulation.emulate`.
        """
        emu = self._load()
        if start is None:
            start = emu.starts(
                temperature, int(n_trajectories or self.cfg.n_trajectories), self.cfg.seed
            )
        return emu.emulate(
            temperature,
            start,
            float(length_ps or self.cfg.rollout_ps),
            float(tau_ps or self.cfg.tau_ps),
            self.calibration,
            self.cfg.seed if seed is None else seed,
            self.cfg.relax_config,
        )

    def _emulate_grid(self) -> dict[str, Tensor]:
        p = self.space[self.t_name]
        temps = torch.linspace(0.0, 1.0, max(self.cfg.grid, 1), dtype=torch.double)
        if self.cfg.grid == 1:
            temps = torch.tensor([0.5], dtype=torch.double)
        values = _unit_to_value(temps, p)
        mean, std, traj = [], [], []
        for k, t in enumerate(values.tolist()):
            est = self.emulate(t, seed=self.cfg.seed + k)
            mean.append([est["mean"][n] for n in PER_FRAME])
            std.append([est["std"][n] for n in PER_FRAME])
            traj.append([est["traj_std"][n] for n in PER_FRAME])
        return {
            "u": temps,
            "mean": torch.tensor(mean, dtype=torch.double),
            "std": torch.tensor(std, dtype=torch.double),
            "traj_std": torch.tensor(traj, dtype=torch.double),
        }

    # -- learning -------------------------------------------------------------------------
    def _run_noise(self, u_t: Tensor, length: Tensor, k: int) -> Tensor:
        """Sampling std of observable ``k`` in one real run of ``length`` ps at ``u_t``: from
        the data set's real runs (block means) when the emulation has them, else from the
        spread of the emulated trajectories."""
        temperature = _unit_to_value(u_t.double(), self.space[self.t_name])
        real = self._load().run_noise_std(temperature, length.double(), k)
        if real is not None:
            return real.clamp(0.005, 0.5)
        assert self._grid is not None
        g = self._grid
        if g["u"].numel() == 1:
            s = g["traj_std"][0, k].expand_as(u_t)
        else:
            s = torch.from_numpy(
                np.interp(u_t.numpy(), g["u"].numpy(), g["traj_std"][:, k].numpy())
            )
        ratio = (self.cfg.rollout_ps / length.clamp_min(1.0)).sqrt()
        return (s * ratio).clamp(0.01, 0.5)

    def _length(self, X: Tensor) -> Tensor:
        if self.l_dim is None:
            return torch.full(X.shape[:-1], self.cfg.rollout_ps, dtype=torch.double)
        return _unit_to_value(X[..., self.l_dim].double(), self.space[self.l_name])

    def _cost_features(self, X: Tensor) -> Tensor:
        ones = torch.ones(X.shape[:-1], dtype=torch.double)
        if self.l_dim is None:
            return ones.unsqueeze(-1)
        return torch.stack([ones, torch.log(self._length(X) / 1000.0)], dim=-1)

    def can_fit(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> bool:
        """Whether :meth:`fit` can give every outcome a head: with no real result when the
        emulator computes them all (its grid), else once two completed experiments measured
        each outcome it cannot compute."""
        completed, _ = split_by_status(experiments, observations)
        for outcome in self.outcomes:
            if outcome in PER_FRAME and self.cfg.grid > 0:
                continue
            measured = [o for _, o in completed if math.isfinite(o.outcomes.get(outcome, math.nan))]
            if len(measured) < 2:
                return False
        return True

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        """Emulate the grid (once), then condition the heads on it and on real results."""
        completed, costed = split_by_status(experiments, observations)
        temps = self._load().train_temperatures
        self._train_range = (min(temps), max(temps))
        if self._grid is None and self.cfg.grid > 0:
            self._grid = self._emulate_grid()
        heads: dict[str, BayesLinear] = {}
        used: set[str] = set()
        for outcome in self.outcomes:
            rows = [
                (e, o) for e, o in completed if math.isfinite(o.outcomes.get(outcome, math.nan))
            ]
            emulable = outcome in PER_FRAME and self._grid is not None
            if not emulable and len(rows) < 2:
                raise WorldModelError(
                    f"outcome {outcome!r} is not one the emulator computes ({list(PER_FRAME)}) "
                    f"and only {len(rows)} real experiments measured it; need 2"
                )
            xs, ys, noise = [], [], []
            if emulable:
                assert self._grid is not None
                k = PER_FRAME.index(outcome)
                xg = torch.full((self._grid["u"].numel(), self.space.dim), 0.5, dtype=torch.double)
                xg[:, self.t_dim] = self._grid["u"]
                xs.append(xg)
                ys.append(self._grid["mean"][:, k])
                noise.append(self._grid["std"][:, k].clamp_min(1e-3))
            if rows:
                xr = self.space.encode([e.parameters for e, _ in rows]).double()
                yr = torch.tensor([o.outcomes[outcome] for _, o in rows], dtype=torch.double)
                if emulable:
                    nr = self._run_noise(xr[:, self.t_dim], self._length(xr), k)
                else:
                    nr = torch.full_like(yr, float(yr.std()) if len(rows) > 2 else 1.0)
                    nr = nr.clamp_min(1e-3)
                xs.append(xr)
                ys.append(yr)
                noise.append(nr)
                used.update(e.id for e, _ in rows)
            y = torch.cat(ys)
            scale = max(float(y.abs().max()), 1.0)
            head = BayesLinear(
                polynomial_features(self.t_dim, 2),
                torch.tensor([float(y.mean()), 0.0, 0.0]),
                torch.tensor([scale, scale, scale]),
                noise_std=0.0,
            )
            head.update(torch.cat(xs), y, torch.cat(noise))
            heads[outcome] = head
        self._heads = heads
        self._cost = self._fit_cost(costed)
        used.update(e.id for e, _ in costed)
        self.summary = TrainingSummary(
            n_observations=len(completed),
            n_cost_observations=len(costed),
            outcomes=list(self.outcomes),
            experiment_ids=[e.id for e in experiments if e.id in used],
            extra={
                "emulator_checkpoint": str(self.cfg.checkpoint),
                "grid_temperatures": self.cfg.grid,
                "n_trajectories": self.cfg.n_trajectories,
                "tau_ps": self.cfg.tau_ps,
                "rollout_ps": self.cfg.rollout_ps,
            },
        )

    def _fit_cost(self, costed: list[tuple[Experiment, Observation]]) -> BayesLinear:
        """Log cost linear in log length; prior from OpenMM's throughput (see heads)."""
        s_per_ns = 12.0 if self._emu is None else self._emu.openmm_s_per_ns
        head = openmm_cost_head(self._cost_features, s_per_ns, with_length=self.l_dim is not None)
        if costed:
            x = self.space.encode([e.parameters for e, _ in costed]).double()
            y = torch.tensor([math.log(o.cost) for _, o in costed], dtype=torch.double)
            head.update(x, y, torch.full_like(y, 0.3))
        return head

    # -- querying -------------------------------------------------------------------------
    def _require(self) -> None:
        if not self._heads or self._cost is None:
            raise WorldModelError(
                "the md_emulator world model has not been fitted yet; call fit (a campaign "
                "does after its first experiments)"
            )

    def posterior(self, X: Tensor, outcome: str) -> Posterior:
        self._require()
        if outcome not in self._heads:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        return self._heads[outcome].posterior(X)

    def observation_std(self, X: Tensor, outcome: str) -> Tensor | None:
        """Sampling std of an emulated observable in one real run of ``X``'s length (``n``)."""
        self._require()
        if self._grid is None or outcome not in PER_FRAME:
            return None
        X = X.double()
        return self._run_noise(X[..., self.t_dim], self._length(X), PER_FRAME.index(outcome))

    def log_cost_posterior(self, X: Tensor) -> Posterior:
        self._require()
        assert self._cost is not None
        return self._cost.posterior(X)

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = 0.9
    ) -> list[Prediction]:
        self._require()
        level = check_level(level)
        if not parameters:
            return []
        X = self.space.encode([self.space.validate(p) for p in parameters]).double()
        trained = self._trained_range()
        out = []
        moments = {k: h.moments(X, observation_noise=False) for k, h in self._heads.items()}
        assert self._cost is not None
        cmean, cstd = self._cost.moments(X, observation_noise=True)
        noise = {k: self.observation_std(X, k) for k in moments}
        for i, params in enumerate(parameters):
            ests = {}
            for name, (m, s) in moments.items():
                var = float(s[i]) ** 2
                if (run := noise[name]) is not None:  # a real run's own sampling noise
                    var += float(run[i]) ** 2
                ests[name] = Estimate.gaussian(float(m[i]), math.sqrt(var), level)
            why = self._extrapolation_reason(params, trained)
            out.append(
                Prediction(
                    outcomes=ests,
                    cost=Estimate.lognormal(float(cmean[i]), float(cstd[i]), level),
                    extrapolating=why is not None,
                    notes=[why] if why else [],
                    extrapolating_reason=why,
                )
            )
        return out

    def _trained_range(self) -> tuple[float, float] | None:
        return self._train_range

    def _extrapolation_reason(
        self, params: Mapping[str, Any], trained: tuple[float, float] | None
    ) -> str | None:
        """Why ``params`` lie outside the trained conditions: a temperature outside the
        emulator's training temperatures, or a run length outside those whose sampling noise
        was measured on real runs; ``None`` inside both."""
        t = float(params[self.t_name])
        if trained is not None and not (trained[0] <= t <= trained[1]):
            return (
                f"{self.t_name}={t:g} K is outside the emulator's training temperatures "
                f"{trained[0]:g}-{trained[1]:g} K"
            )
        lengths = self._load().noise_length_range if self.l_name in params else None
        if lengths is not None:
            length = float(params[self.l_name])
            if not (lengths[0] <= length <= lengths[1]):
                return (
                    f"{self.l_name}={length:g} ps is outside the run lengths measured on real "
                    f"runs ({lengths[0]:g}-{lengths[1]:g} ps)"
                )
        return None

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        self._require()
        tensors: dict[str, Tensor] = {}
        for name, head in self._heads.items():
            tensors.update({f"head.{name}.{k}": v for k, v in head.state().items()})
        assert self._cost is not None
        tensors.update({f"cost.{k}": v for k, v in self._cost.state().items()})
        if self._grid is not None:
            tensors.update({f"grid.{k}": v for k, v in self._grid.items()})
        emu_tensors, emu_extra = self._load().state()
        tensors.update(emu_tensors)
        extra = {
            "emulator": emu_extra,
            "heads": list(self._heads),
            "has_grid": self._grid is not None,
            "train_range": list(self._train_range) if self._train_range else None,
        }
        return tensors, extra

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        try:
            if extra.get("has_grid"):
                self._grid = {k: tensors[f"grid.{k}"] for k in ("u", "mean", "std", "traj_std")}
            heads = {}
            for name in extra["heads"]:
                head = BayesLinear(
                    polynomial_features(self.t_dim, 2), torch.zeros(3), torch.ones(3), 0.0
                )
                head.load({k: tensors[f"head.{name}.{k}"] for k in ("mean", "cov", "noise")})
                heads[name] = head
            p = 1 if self.l_dim is None else 2
            cost = BayesLinear(self._cost_features, torch.zeros(p), torch.ones(p), 0.3)
            cost.load({k: tensors[f"cost.{k}"] for k in ("mean", "cov", "noise")})
        except KeyError as exc:
            raise WorldModelError(f"saved md_emulator state lacks {exc}; save it again") from None
        if "emulator" in extra:  # saved with its weights: no checkpoint file needed
            self._emu = Emulation.from_state(dict(tensors), dict(extra["emulator"]))
        self._heads, self._cost = heads, cost
        rng = extra.get("train_range")
        self._train_range = (float(rng[0]), float(rng[1])) if rng else None
