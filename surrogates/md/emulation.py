"""The trained emulator ensemble with what a rollout needs, saved and restored as tensors.

:class:`Emulation` bundles the flow-matching ensemble (:mod:`surrogates.md.flow`), a pool of
start configurations per training temperature, the basin definition and the OpenMM throughput
of the data set. It is built once from the checkpoint and the data set, and it round-trips
through ``(tensors, extra)`` — weights and start frames as tensors, the rest as JSON — so a
saved world model rolls trajectories out without the checkpoint or the data set on disk.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.md.observables import PER_FRAME
from sciwm.md.torch_ops import frame_observables
from surrogates.md.flow import FlowEmulator, rollout
from surrogates.md.relax import RelaxConfig, Relaxer

#: Start configurations kept per training temperature (evenly spaced frames).
POOL = 256
#: Run lengths (ps) at which the real runs' sampling noise is tabulated.
NOISE_LENGTHS = (10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


@dataclass
class Emulation:
    """An emulator ensemble ready to roll out.

    Attributes:
        models: The ensemble members.
        meta: The checkpoint's facts (flow config, molecule, training, calibration).
        pool: Training temperature (K) to a ``POOL x n x 3`` tensor of start configurations.
        basins: ``(lo, hi)`` ψ bounds of the αR basin (degrees), as in the data set.
        openmm_s_per_ns: Mean OpenMM wall seconds per simulated ns of the data set's runs.
        relaxers: The correctors built so far, by their config (an OpenMM context each).
        run_noise: ``T x L x K``: standard deviation of each observable of
            :data:`~sciwm.md.observables.PER_FRAME` (``K``) over real runs of each length
            of ``noise_lengths`` (``L``) at each training temperature (``T``, sorted), from
            block means of the data set's training runs; ``None`` if unknown.
        noise_lengths: The lengths (ps) of ``run_noise``.
        train_frames: Training temperature (K) to a ``frames x K`` tensor of the per-frame
            observables of its real training run (frames ``frame_ps`` apart), when built from
            the data set (not saved: what the world model learns from it is).
        frame_ps: Interval between the frames of ``train_frames``.
    """

    models: list[FlowEmulator]
    meta: dict[str, Any]
    pool: dict[float, Tensor]
    basins: tuple[float, float]
    openmm_s_per_ns: float
    relaxers: dict[RelaxConfig, Relaxer] = field(default_factory=dict, repr=False)
    run_noise: Tensor | None = None
    noise_lengths: tuple[float, ...] = NOISE_LENGTHS
    train_frames: dict[float, Tensor] | None = field(default=None, repr=False)
    frame_ps: float = 1.0

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, data: str | Path | None) -> Emulation:
        """Load the ensemble and take start frames from the data set's training runs.

        Raises:
            WorldModelError: If the checkpoint or the data set is missing or unreadable.
        """
        from surrogates.md.data import load_dataset
        from surrogates.md.train import load_checkpoint

        models, meta = load_checkpoint(checkpoint)
        dataset = load_dataset(data)
        pool = {}
        for traj in dataset.select(role="train"):
            if traj.temperature not in pool:
                idx = torch.linspace(0, traj.positions.shape[0] - 1, POOL).long()
                pool[traj.temperature] = traj.positions[idx].clone()
        rates = [t.openmm_s_per_ns for t in dataset.trajectories]
        basins = tuple(float(v) for v in dataset.meta["basins"]["alpha_r_psi"])
        frames, frame_ps = _train_frames(dataset, models[0].molecule, basins)  # type: ignore[arg-type]
        return cls(
            models,
            meta,
            pool,
            basins,  # type: ignore[arg-type]
            sum(rates) / len(rates),
            run_noise=_block_noise(frames, frame_ps),
            train_frames=frames,
            frame_ps=frame_ps,
        )

    # -- persistence --------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Weights (``emulator.member{k}.*``) and start frames as tensors; facts as JSON."""
        from surrogates.md.train import config_to_dict, ensemble_state

        tensors = {f"emulator.{k}": v for k, v in ensemble_state(self.models).items()}
        temps = sorted(self.pool)
        for i, t in enumerate(temps):
            tensors[f"emulator.pool{i}"] = self.pool[t]
        if self.run_noise is not None:
            tensors["emulator.run_noise"] = self.run_noise
        extra = {
            "meta": {
                **self.meta,
                "members": len(self.models),
                "flow": config_to_dict(self.models[0].config),
                "molecule": asdict(self.models[0].molecule),
            },
            "pool_temperatures": temps,
            "basins": list(self.basins),
            "openmm_s_per_ns": self.openmm_s_per_ns,
            "noise_lengths": list(self.noise_lengths),
        }
        return tensors, extra

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], extra: dict[str, Any]) -> Emulation:
        """Inverse of :meth:`state`.

        Raises:
            WorldModelError: If tensors or facts are missing or do not fit the network.
        """
        from surrogates.md.train import build_ensemble

        prefix = "emulator."
        weights = {
            k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix + "member")
        }
        try:
            models = build_ensemble(weights, extra["meta"])
            pool = {
                float(t): tensors[f"emulator.pool{i}"]
                for i, t in enumerate(extra["pool_temperatures"])
            }
            basins = (float(extra["basins"][0]), float(extra["basins"][1]))
            rate = float(extra["openmm_s_per_ns"])
        except (KeyError, RuntimeError, TypeError, IndexError) as exc:
            raise WorldModelError(
                f"saved md_emulator state has no usable emulator ({type(exc).__name__}: {exc}); "
                "save it again"
            ) from None
        lengths = tuple(float(v) for v in extra.get("noise_lengths", NOISE_LENGTHS))
        noise = tensors.get("emulator.run_noise")  # absent in states saved before it existed
        return cls(models, dict(extra["meta"]), pool, basins, rate, {}, noise, lengths)

    # -- rollouts -----------------------------------------------------------------------
    @property
    def train_temperatures(self) -> list[float]:
        return sorted(self.pool)

    @property
    def noise_length_range(self) -> tuple[float, float] | None:
        """Shortest and longest run length (ps) whose sampling noise was measured on real
        runs, or ``None`` without a table."""
        if self.run_noise is None:
            return None
        known = [
            length
            for j, length in enumerate(self.noise_lengths)
            if bool((self.run_noise[:, j, :] > 0).any())
        ]
        return (min(known), max(known)) if known else None

    def to(self, device: torch.device) -> Emulation:
        """Move the networks to ``device`` (in place); returns ``self``."""
        self.models = [m.to(device) for m in self.models]
        return self

    def run_noise_std(self, temperature: Tensor, length_ps: Tensor, k: int) -> Tensor | None:
        """Sampling std of observable ``k`` in one real run, from the tabulated real runs.

        Interpolated linearly in temperature (flat outside the training temperatures) and in
        log length (std ∝ 1/sqrt(length) beyond the table).

        Args:
            temperature: ``n`` Kelvin.
            length_ps: ``n`` run lengths.
            k: Index into :data:`~sciwm.md.observables.PER_FRAME`.

        Returns:
            ``n`` standard deviations, or ``None`` without a table.
        """
        if self.run_noise is None:
            return None
        temps = np.array(self.train_temperatures)
        lengths = np.log(np.array(self.noise_lengths))
        table = self.run_noise[:, :, k].double().numpy()  # T x L
        t = temperature.detach().double().cpu().numpy().reshape(-1)
        ell = np.log(np.clip(length_ps.detach().double().cpu().numpy().reshape(-1), 1e-3, None))
        at_t = np.stack([np.interp(t, temps, table[:, j]) for j in range(len(lengths))], -1)
        clipped = np.clip(ell, lengths[0], lengths[-1])
        log_at_t = np.log(np.maximum(at_t, 1e-6))
        log_s = np.array(
            [np.interp(c, lengths, row) for c, row in zip(clipped, log_at_t, strict=True)]
        )
        log_s = log_s - 0.5 * (ell - clipped)  # 1/sqrt(length) outside the table
        return torch.from_numpy(np.exp(log_s)).reshape(temperature.shape)

    def starts(self, temperature: float, n: int, seed: int = 0) -> Tensor:
        """``n x atoms x 3`` start configurations: pooled frames at the nearest temperature."""
        nearest = min(self.pool, key=lambda t: abs(t - temperature))
        frames = self.pool[nearest]
        gen = torch.Generator().manual_seed(seed)
        return frames[torch.randint(frames.shape[0], (n,), generator=gen)]

    def _relaxer(self, relax: RelaxConfig | None) -> Relaxer | None:
        """The corrector for ``relax`` (built once per config), ``None`` when it is off."""
        if relax is None or relax.n_steps == 0:
            return None
        if relax not in self.relaxers:
            names = self.models[0].config.condition_names
            self.relaxers[relax] = Relaxer(config=relax, condition_names=names)
        return self.relaxers[relax]

    def emulate(
        self,
        temperature: float,
        start: Tensor,
        length_ps: float,
        tau_ps: float,
        calibration: float,
        seed: int = 0,
        relax: RelaxConfig | None = None,
    ) -> dict[str, Any]:
        """Roll trajectories out at one temperature and estimate the observables.

        Args:
            temperature: Kelvin.
            start: ``B x atoms x 3`` start configurations.
            length_ps: Simulated time per trajectory.
            tau_ps: Jump length.
            calibration: Factor on the ensemble's standard deviations.
            seed: Noise seed.
            relax: The corrector after every jump (:mod:`surrogates.md.relax`; ``None`` or
                a zero length: the network's frames as they are).

        Returns:
            ``rollout`` (:class:`surrogates.md.flow.Rollout`), ``mean``/``std`` (observable
            name to float: estimate and its calibrated uncertainty), ``traj_std`` (spread of
            the observable between single trajectories of ``length_ps``),
            ``valid_fraction`` (emitted frames that are chemically valid),
            ``valid_fraction_raw`` (the network's raw samples that are), ``wall_s``.

        Raises:
            WorldModelError: If the rollout produces non-finite coordinates.
        """
        b = start.shape[0]
        t0 = time.perf_counter()
        cond = torch.full((b, 1), float(temperature))
        roll = self._rollout(start, cond, length_ps, tau_ps, seed, relax, f" at {temperature} K")
        frames = frame_observables(roll.positions[1:], self.models[0].molecule, self.basins)
        owner = torch.arange(b) % len(self.models)
        return {
            "rollout": roll,
            **self._estimate(frames, owner, calibration),
            "valid_fraction": float(roll.valid.float().mean()),
            "valid_fraction_raw": float(roll.raw_valid.float().mean()),
            "wall_s": time.perf_counter() - t0,
        }

    def emulate_many(
        self,
        temperatures: list[float],
        n_trajectories: int,
        length_ps: float,
        tau_ps: float,
        calibration: float,
        seed: int = 0,
        relax: RelaxConfig | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`emulate` at several temperatures in one batch (one network call per jump
        for all of them: on a GPU the whole grid costs about one temperature's time).

        Args:
            temperatures: ``G`` temperatures (K).
            n_trajectories: Trajectories per temperature (from its nearest start frames).
            length_ps, tau_ps, calibration, seed, relax: As for :meth:`emulate`.

        Returns:
            ``G`` dicts with ``mean``, ``std``, ``traj_std`` (as :meth:`emulate`),
            ``valid_fraction`` and ``wall_s`` (the batch's, shared).
        """
        n = int(n_trajectories)
        start = torch.cat([self.starts(t, n, seed + k) for k, t in enumerate(temperatures)])
        cond = torch.tensor([float(t) for t in temperatures]).repeat_interleave(n).unsqueeze(-1)
        t0 = time.perf_counter()
        roll = self._rollout(start, cond, length_ps, tau_ps, seed, relax)
        wall = time.perf_counter() - t0
        frames = frame_observables(roll.positions[1:], self.models[0].molecule, self.basins)
        owner = torch.arange(start.shape[0]) % len(self.models)
        out = []
        for g in range(len(temperatures)):
            sl = slice(g * n, (g + 1) * n)
            group = {name: v[:, sl] for name, v in frames.items()}
            out.append(
                {
                    **self._estimate(group, owner[sl], calibration),
                    "valid_fraction": float(roll.valid[:, sl].float().mean()),
                    "wall_s": wall,
                }
            )
        return out

    def _rollout(
        self,
        start: Tensor,
        cond: Tensor,
        length_ps: float,
        tau_ps: float,
        seed: int,
        relax: RelaxConfig | None,
        where: str = "",
    ) -> Any:
        """One batched rollout of ``B`` trajectories under ``B x 1`` conditions."""
        try:
            relaxer = self._relaxer(relax)
            return rollout(
                self.models,
                start,
                cond,
                tau_ps,
                max(1, int(round(length_ps / tau_ps))),
                seed=seed,
                relax=relaxer,
                ode_steps=relaxer.config.ode_steps if relaxer else None,
            )
        except FloatingPointError as exc:
            raise WorldModelError(f"emulator rollout{where} failed: {exc}") from None

    def _estimate(
        self, frames: dict[str, Tensor], owner: Tensor, calibration: float
    ) -> dict[str, dict[str, float]]:
        """Observables' estimates from ``jumps x B`` per-frame values of ``B`` trajectories
        driven by ensemble members ``owner``: ``mean``, ``std`` (ensemble disagreement plus
        sampling, times ``calibration``) and ``traj_std`` (spread between trajectories)."""
        b = owner.numel()
        members = sorted(set(owner.tolist()))
        mean, std, traj_std = {}, {}, {}
        for name, values in frames.items():
            per_traj = values.mean(0)  # B
            by_member = torch.stack([per_traj[owner == k].mean() for k in members])
            between = by_member.var() if len(members) > 1 else torch.tensor(0.0)
            sampling = per_traj.var() / b
            mean[name] = float(per_traj.mean())
            std[name] = calibration * float((between + sampling).sqrt())
            traj_std[name] = float(per_traj.std())
        return {"mean": mean, "std": std, "traj_std": traj_std}


def _train_frames(
    dataset: Any, molecule: Any, basins: tuple[float, float]
) -> tuple[dict[float, Tensor], float]:
    """Per-frame observables (``frames x K``) of the training runs, by temperature (runs at
    one temperature concatenated), and their frame interval (ps)."""
    by_t: dict[float, list[Tensor]] = {}
    frame_ps = 1.0
    for traj in dataset.select(role="train"):
        obs = frame_observables(traj.positions, molecule, basins)
        by_t.setdefault(traj.temperature, []).append(torch.stack([obs[n] for n in PER_FRAME], -1))
        frame_ps = float(traj.frame_ps)
    return {t: torch.cat(v) for t, v in sorted(by_t.items())}, frame_ps


def block_means(values: Tensor, length_ps: float, frame_ps: float) -> Tensor:
    """``m x K`` means of consecutive blocks of ``length_ps`` of a ``frames x K`` run."""
    b = max(1, int(round(length_ps / frame_ps)))
    m = values.shape[0] // b
    return values[: m * b].reshape(m, b, -1).mean(1)


def _block_noise(frames: dict[float, Tensor], frame_ps: float) -> Tensor:
    """``T x L x K`` std of block means of the training runs' observables (see the class)."""
    out = torch.zeros(len(frames), len(NOISE_LENGTHS), len(PER_FRAME), dtype=torch.float64)
    for i, t in enumerate(sorted(frames)):
        for j, length in enumerate(NOISE_LENGTHS):
            means = block_means(frames[t], length, frame_ps)
            if means.shape[0] >= 2:
                out[i, j] = means.std(0)
    return out


__all__ = ["NOISE_LENGTHS", "POOL", "Emulation", "block_means"]
