"""The emulator's corrector: a short real Langevin run after every emulated jump.

The network's jump puts the slow coordinates (which basin, roughly where in it) τ ahead; its
samples are noisy in the fast ones (bond angles, the shape of a basin in φ/ψ), and those errors
bias the torsion histograms even after the bond projection. A fraction of a picosecond of real
dynamics with the force field the data was made with rethermalises the fast degrees of freedom
(they decorrelate in well under a picosecond) without time to cross a basin barrier (tens of
picoseconds and more), so the slow state the emulator chose is kept. This is the
coarse-propagator-plus-fine-corrector split of parareal and of learned MD samplers that add a
physical correction step (cf. Timewarp's Metropolis step with the real energy): the cost is
``length_ps / τ`` of a full simulation (0.3 %, for 0.3 ps per 100 ps jump), and it is counted
in every wall time and time-compression figure.

:class:`Relaxer` keeps one OpenMM context for the system (the engine configuration of the data
set: same force field, timestep, friction and constraints, built by :mod:`sciwm.md.systems` and
run on the platform :func:`sciwm.md.engine.choose_platform` picks) and relaxes a batch frame by
frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciwm.errors import WorldModelError

#: A relaxed frame whose atom moved farther than this (nm) is taken as blown up.
MAX_DISPLACEMENT_NM = 1.0


@dataclass(frozen=True)
class RelaxConfig:
    """Settings of the corrector run.

    Attributes:
        length_ps: Simulated time per relaxation (``0`` disables the corrector).
        timestep_fs: Integration step, the data set's engine's (so each corrector step
            costs what a step of the real simulation it is compared with costs).
        friction_per_ps: Langevin collision rate. Higher than the data set's 1/ps: the
            friction does not change the Boltzmann distribution Langevin dynamics samples,
            only how fast the strain energy of the network's sample is drained (at 1/ps the
            frames stay hot for longer than the run).
        ode_steps: The network's Heun steps per jump when the corrector follows (it fixes
            the fine structure, so fewer steps suffice; ``None``: the checkpoint's).
        platform: OpenMM platform (``"auto"``: Reference in vacuum, CPU otherwise).
        minimise_iterations: Energy-minimisation iterations before the one retry of a frame
            whose relaxation blew up (a bad contact in the network's sample).
    """

    length_ps: float = 0.3
    timestep_fs: float = 2.0
    friction_per_ps: float = 10.0
    ode_steps: int | None = 2
    platform: str = "auto"
    minimise_iterations: int = 200

    def __post_init__(self) -> None:
        if not (math.isfinite(self.length_ps) and self.length_ps >= 0):
            raise WorldModelError(f"relaxation length_ps must be >= 0, got {self.length_ps}")
        if not self.timestep_fs > 0 or not self.friction_per_ps > 0:
            raise WorldModelError("relaxation timestep_fs and friction_per_ps must be > 0")

    @property
    def n_steps(self) -> int:
        return int(round(self.length_ps * 1000.0 / self.timestep_fs))


class Relaxer:
    """Relaxes batches of configurations with short real Langevin runs.

    Args:
        spec: The molecular system (:class:`sciwm.md.systems.SystemSpec`; default: the
            embedded alanine dipeptide in vacuum, the emulator's training system). Its atom
            order must be the emulator's.
        config: Corrector settings.
        condition_names: Names of the emulator's conditions; ``temperature`` is read from
            them.

    Raises:
        WorldModelError: If the conditions have no temperature.
    """

    def __init__(
        self,
        spec: Any = None,
        config: RelaxConfig = RelaxConfig(),
        condition_names: tuple[str, ...] = ("temperature",),
    ) -> None:
        if "temperature" not in condition_names:
            raise WorldModelError(
                f"the corrector needs a temperature among the conditions {condition_names}"
            )
        self.config = config
        self._t_index = condition_names.index("temperature")
        self._spec = spec
        self._context: Any = None
        self._integrator: Any = None
        self._n_atoms = 0

    def _ensure_context(self) -> None:
        if self._context is not None:
            return
        import openmm
        from openmm import unit

        from sciwm.md.engine import choose_platform
        from sciwm.md.systems import SystemSpec, build_system

        spec = self._spec or SystemSpec()
        _, system, _ = build_system(spec)
        cfg = self.config
        self._integrator = openmm.LangevinMiddleIntegrator(
            300.0 * unit.kelvin,
            cfg.friction_per_ps / unit.picosecond,
            cfg.timestep_fs * unit.femtosecond,
        )
        platform, props = choose_platform(cfg.platform, spec, 1)
        self._context = openmm.Context(system, self._integrator, platform, props)
        self._n_atoms = system.getNumParticles()

    def _run(self, x: np.ndarray, temperature: float, seed: int, minimise: bool) -> np.ndarray:
        import openmm
        from openmm import unit

        ctx = self._context
        ctx.setPositions(x)
        ctx.applyConstraints(1e-6)
        if minimise:
            openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, self.config.minimise_iterations)
        self._integrator.setTemperature(temperature * unit.kelvin)
        ctx.setVelocitiesToTemperature(temperature * unit.kelvin, seed % 2**31 + 1)
        self._integrator.step(self.config.n_steps)
        state = ctx.getState(getPositions=True, getEnergy=True)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        y = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        if not math.isfinite(energy) or not np.all(np.isfinite(y)):
            return np.full_like(x, np.nan)
        return y

    def restart(self, seed: int) -> None:
        """Restart the thermostat's random stream from ``seed`` (OpenMM reads an
        integrator's seed when its context is initialised, ~8 ms here, so a rollout restarts
        it once, not every jump)."""
        self._ensure_context()
        self._integrator.setRandomNumberSeed(seed % 2**31 + 1)
        self._context.reinitialize()

    def __call__(
        self, x: Tensor, conditions: Tensor, seed: int = 0, restart: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Relax every configuration of a batch.

        Args:
            x: ``B x n x 3`` configurations, nm.
            conditions: ``B x C`` raw conditions (temperature in K among them).
            seed: Seed of the start velocities (frame ``i`` uses ``seed + i``) and, with
                ``restart``, of the thermostat's stream.
            restart: Restart the thermostat's stream (see :meth:`restart`); ``False``
                continues it, so that a rollout is reproducible from its first call's seed.

        Returns:
            ``(relaxed, ok)``: ``B x n x 3`` configurations (a frame whose relaxation blew up
            even after a minimisation is returned unchanged) and ``B`` booleans, whether the
            frame was relaxed.

        Raises:
            WorldModelError: If the configurations do not have the system's atom count.
        """
        if self.config.n_steps == 0:
            return x, torch.ones(x.shape[0], dtype=torch.bool)
        if restart:
            self.restart(seed)
        if x.shape[1] != self._n_atoms:
            raise WorldModelError(
                f"the corrector's system has {self._n_atoms} atoms, the emulator's frames "
                f"{x.shape[1]}; relax with the system the emulator was trained on"
            )
        xs = x.detach().cpu().double().numpy()
        temps = conditions[:, self._t_index].detach().cpu().double().numpy()
        out = xs.copy()
        ok = np.zeros(len(xs), dtype=bool)
        for i, (frame, temperature) in enumerate(zip(xs, temps, strict=True)):
            for minimise in (False, True):
                y = self._run(frame, float(temperature), seed + i, minimise)
                if np.all(np.isfinite(y)) and np.abs(y - frame).max() <= MAX_DISPLACEMENT_NM:
                    out[i], ok[i] = y, True
                    break
        relaxed = torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
        return relaxed - relaxed.mean(dim=1, keepdim=True), torch.from_numpy(ok)


__all__ = ["MAX_DISPLACEMENT_NM", "RelaxConfig", "Relaxer"]
