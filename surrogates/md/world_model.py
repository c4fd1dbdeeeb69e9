"""``MDEmulatorWorldModel``: the MD emulator behind the ``WorldModel`` contract.

Three parts, each cheap to query:

* the **emulator** — flow-matching GNNs (:mod:`surrogates.md.emulation`) trained on real
  OpenMM trajectories, loaded from a checkpoint, saved with the model (weights and start
  frames). At :meth:`fit` it rolls out trajectories on a grid of temperatures (once) and
  turns them into pseudo-observations of every observable it can compute, each with an
  uncertainty (ensemble disagreement plus sampling spread, scaled by a factor calibrated
  against held-out real simulations);
* the **property head** — a Bayesian polynomial regression in temperature per observable,
  conditioned on the source chosen for it (the real runs the emulator was trained on, the
  emulated grid, or both; :mod:`surrogates.md.answers`) *and* on every real observation of
  the campaign; :meth:`posterior` and :meth:`predict` read it, so acquisition functions run
  in microseconds; a real run of finite length adds its own sampling noise (measured on the
  data set's real runs, :meth:`surrogates.md.emulation.Emulation.run_noise_std`); intervals
  are split-conformal on held-out real runs and stay in the observable's range
  (populations in [0, 1], their means summing to one);
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
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from botorch.posteriors import GPyTorchPosterior, Posterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.md.observables import BASINS, PER_FRAME
from sciwm.prediction import Estimate, Prediction
from sciwm.space import SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from surrogates.md.answers import SOURCES, Answers, Evidence, real_evidence
from surrogates.md.conditions import Conditions, unit_to_value
from surrogates.md.emulation import Emulation
from surrogates.md.heads import BayesLinear, openmm_cost_head, polynomial_features
from surrogates.md.persistence import pack, unpack
from surrogates.md.settings import DEFAULT_CHECKPOINT, MDEmulatorSettings

__all__ = ["DEFAULT_CHECKPOINT", "MDEmulatorSettings", "MDEmulatorWorldModel"]


_Z90 = 1.6448536269514722


class MDEmulatorWorldModel(Conditions, WorldModel):
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
        self._answers: Answers | None = None
        self._rollouts: dict[tuple, dict[str, Any]] = {}

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
    def answer_sources(self) -> dict[str, str]:
        """The source each emulable observable is answered from (see
        :mod:`surrogates.md.answers`); empty before the first fit."""
        if self._answers is None:
            return {}
        return {n: SOURCES[int(c)] for n, c in zip(PER_FRAME, self._answers.choice, strict=True)}

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
        n = int(n_trajectories or self.cfg.n_trajectories)
        length, tau = float(length_ps or self.cfg.rollout_ps), float(tau_ps or self.cfg.tau_ps)
        seed = self.cfg.seed if seed is None else seed
        key = (float(temperature), n, length, tau, seed)
        if start is None and key in self._rollouts:  # cached per condition
            return self._rollouts[key]
        out = emu.emulate(
            temperature,
            emu.starts(temperature, n, self.cfg.seed) if start is None else start,
            length,
            tau,
            self.calibration,
            seed,
            self.cfg.relax_config,
        )
        if start is None:
            self._rollouts[key] = out
        return out

    def _emulate_grid(self) -> dict[str, Tensor]:
        """The grid's rollouts, all temperatures in one batch (see ``Emulation.emulate_many``)."""
        p = self.space[self.t_name]
        temps = torch.linspace(0.0, 1.0, max(self.cfg.grid, 1), dtype=torch.double)
        if self.cfg.grid == 1:
            temps = torch.tensor([0.5], dtype=torch.double)
        values = unit_to_value(temps, p)
        ests = self._load().emulate_many(
            values.tolist(),
            self.cfg.n_trajectories,
            self.cfg.rollout_ps,
            self.cfg.tau_ps,
            self.calibration,
            self.cfg.seed,
            self.cfg.relax_config,
        )
        mean = [[e["mean"][n] for n in PER_FRAME] for e in ests]
        std = [[e["std"][n] for n in PER_FRAME] for e in ests]
        traj = [[e["traj_std"][n] for n in PER_FRAME] for e in ests]
        return {
            "u": temps,
            "mean": torch.tensor(mean, dtype=torch.double),
            "std": torch.tensor(std, dtype=torch.double),
            "traj_std": torch.tensor(traj, dtype=torch.double),
        }

    # -- learning -------------------------------------------------------------------------
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
        """Emulate the grid and choose and calibrate the sources (once, see
        :mod:`surrogates.md.answers`), then condition the heads on the real results."""
        completed, costed = split_by_status(experiments, observations)
        temps = self._load().train_temperatures
        self._train_range = (min(temps), max(temps))
        if self._grid is None and self.cfg.grid > 0:
            self._grid = self._emulate_grid()
        if self._answers is None:
            self._answers = self._build_answers()
        heads: dict[str, BayesLinear] = {}
        used: set[str] = set()
        emulable = [n for n in PER_FRAME if self._answers is not None]
        for outcome in dict.fromkeys([*self.outcomes, *emulable]):
            rows = [
                (e, o) for e, o in completed if math.isfinite(o.outcomes.get(outcome, math.nan))
            ]
            if outcome not in emulable and len(rows) < 2:
                raise WorldModelError(
                    f"outcome {outcome!r} is not one the emulator computes ({list(PER_FRAME)}) "
                    f"and only {len(rows)} real experiments measured it; need 2"
                )
            xr = self.space.encode([e.parameters for e, _ in rows]).double()
            yr = torch.tensor([o.outcomes[outcome] for _, o in rows], dtype=torch.double)
            if outcome in self.outcomes:
                used.update(e.id for e, _ in rows)
            if outcome in emulable:
                assert self._answers is not None
                k = PER_FRAME.index(outcome)
                nr = self._run_noise(xr[:, self.t_dim], self._length(xr), k)
                heads[outcome] = self._answers.head(k, extra=(xr, yr, nr))
                continue
            nr = torch.full_like(yr, float(yr.std()) if len(rows) > 2 else 1.0).clamp_min(1e-3)
            scale = max(float(yr.abs().max()), 1.0)
            head = BayesLinear(
                polynomial_features(self.t_dim, 2),
                torch.tensor([float(yr.mean()), 0.0, 0.0]),
                torch.tensor([scale, scale, scale]),
                noise_std=0.0,
            )
            head.update(xr, yr, nr)
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

    def _build_answers(self) -> Answers | None:
        """Sources, their choice and conformal scores, from the emulator's data set."""
        real, checks = real_evidence(self._load())
        grid = None
        if self._grid is not None:
            t = unit_to_value(self._grid["u"], self.space[self.t_name])
            grid = Evidence(t, self._grid["mean"], self._grid["std"])
        if real is None and grid is None:
            return None
        answers = Answers(self._to_unit, self.t_dim, self._noise_at, real, grid)
        answers.calibrate(checks)
        return answers

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
        if outcome not in self._heads or outcome not in self.outcomes:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        post = self._heads[outcome].posterior(X)
        c, pops = self._scale(outcome), [f"pop_{b}" for b in BASINS]
        normalise = outcome in pops and all(p in self._heads for p in pops)
        if c == 1.0 and not normalise:
            return post
        mvn = post.distribution
        mean = mvn.mean
        if normalise:  # as predict: the three populations' means sum to one
            parts = [self._heads[p].posterior(X).mean.squeeze(-1).clamp(0, 1) for p in pops]
            mean = mean.clamp(0, 1) / sum(parts).clamp_min(1e-6)
        return GPyTorchPosterior(MultivariateNormal(mean, mvn.covariance_matrix * c**2))

    def _scale(self, outcome: str, length_ps: float | None = None) -> float:
        """Conformal 90 % quantile over the normal one: the factor on the std (for runs of
        ``length_ps``; default the longest scored)."""
        if self._answers is None or outcome not in PER_FRAME:
            return 1.0
        k = PER_FRAME.index(outcome)
        if length_ps is None:
            return self._answers.quantile(k, 0.9) / _Z90
        return self._answers.quantile(k, 0.9, length_ps) / _Z90

    def observation_std(self, X: Tensor, outcome: str) -> Tensor | None:
        """Sampling std of an emulated observable in one real run of ``X``'s length (``n``)."""
        self._require()
        if (self._grid is None and self._answers is None) or outcome not in PER_FRAME:
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
        t0 = time.perf_counter()
        X = self.space.encode(parameters).double()
        trained = self._trained_range()
        moments = {k: h.moments(X, observation_noise=False) for k, h in self._heads.items()}
        assert self._cost is not None
        cmean, cstd = self._cost.moments(X, observation_noise=True)
        noise = {k: self.observation_std(X, k) for k in self.outcomes}
        lengths = self._length(X)
        pops = [f"pop_{b}" for b in BASINS]
        if all(p in moments for p in pops):  # populations sum to one
            total = sum(moments[p][0].clamp(0, 1) for p in pops).clamp_min(1e-6)
            moments.update({p: (moments[p][0].clamp(0, 1) / total, moments[p][1]) for p in pops})
        ms = (time.perf_counter() - t0) * 1000.0 / len(parameters)
        out = []
        for i, params in enumerate(parameters):
            ests = {}
            for name in self.outcomes:
                m, s = float(moments[name][0][i]), float(moments[name][1][i])
                run = noise[name]  # a real run's own sampling noise
                std = math.sqrt(s**2 + (float(run[i]) ** 2 if run is not None else 0.0))
                if self._answers is None or name not in PER_FRAME:
                    ests[name] = Estimate.gaussian(m, std, level)
                    continue
                length = float(lengths[i])
                q = self._answers.quantile(PER_FRAME.index(name), level, length)
                lo, hi = (0.0, 1.0) if name.startswith("pop_") else (-1.0, 1.0)
                ests[name] = Estimate(
                    m,
                    std * self._scale(name, length),
                    max(lo, m - q * std),
                    min(hi, m + q * std),
                    level,
                )
            why = self._extrapolation_reason(params, trained)
            out.append(
                Prediction(
                    outcomes=ests,
                    cost=Estimate.lognormal(float(cmean[i]), float(cstd[i]), level),
                    extrapolating=why is not None,
                    notes=[*([why] if why else []), self._source_note(ms)],
                    extrapolating_reason=why,
                )
            )
        return out

    # -- persistence (surrogates.md.persistence) -------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        self._require()
        return pack(self)

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        unpack(self, tensors, extra)
