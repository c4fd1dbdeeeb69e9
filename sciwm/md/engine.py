"""The MD engine: one OpenMM Langevin run of a system at given conditions.

:func:`simulate` is a plain function, used by the OpenMM connector's worker process
(:func:`lab_connectors.openmm_md.run_md_experiment`), the data flow (:mod:`flows.md_data`) and
the benchmark, so the training data, the campaign's real experiments and the benchmark's
reference runs come from the same engine code. :func:`choose_platform` is the one place that
maps a platform name (or ``"auto"``) to an OpenMM platform; the emulator's corrector
(:mod:`surrogates.md.relax`) uses it too. OpenMM is imported inside the functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sciwm.md.systems import SystemSpec, build_system


class SimulationFailed(RuntimeError):
    """The simulation blew up (non-finite energy or coordinates) or could not start."""


@dataclass(frozen=True)
class RunConfig:
    """One simulation.

    Attributes:
        temperature: Kelvin.
        length_ps: Simulated time after equilibration, picoseconds.
        frame_ps: Interval between saved frames, picoseconds.
        timestep_fs: Integration step, femtoseconds.
        friction_per_ps: Langevin collision rate, 1/ps.
        equilibrate_ps: Discarded equilibration, picoseconds.
        seed: Random seed of the integrator and the initial velocities.
        platform: OpenMM platform (``"auto"``: Reference in vacuum, CPU otherwise).
        threads: CPU-platform threads.
    """

    temperature: float = 300.0
    length_ps: float = 10.0
    frame_ps: float = 1.0
    timestep_fs: float = 2.0
    friction_per_ps: float = 1.0
    equilibrate_ps: float = 5.0
    seed: int = 0
    platform: str = "auto"
    threads: int = 1


def platform_names() -> list[str]:
    """Names of the OpenMM platforms available on this machine (e.g. Reference, CPU, CUDA)."""
    import openmm

    return [
        openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
    ]


def choose_platform(name: str, spec: SystemSpec, threads: int = 1) -> tuple[Any, dict[str, str]]:
    """The OpenMM platform to run ``spec`` on, and its properties.

    Args:
        name: A platform name, or ``"auto"``: Reference in vacuum (fastest for a small
            molecule without long-range forces), CPU otherwise.
        spec: The system (its solvent decides ``"auto"``).
        threads: Threads of the CPU platform.

    Returns:
        ``(platform, properties)`` for ``openmm.Context``.
    """
    import openmm

    if name == "auto":
        name = "Reference" if spec.solvent == "vacuum" else "CPU"
    platform = openmm.Platform.getPlatformByName(name)
    props = {"Threads": str(threads)} if name == "CPU" else {}
    return platform, props


def simulate(
    spec: SystemSpec,
    config: RunConfig,
    start: tuple[np.ndarray, np.ndarray | None] | None = None,
    progress: Callable[[np.ndarray, np.ndarray, Any], None] | None = None,
    progress_every: int = 0,
) -> dict[str, Any]:
    """Run one Langevin simulation and return its frames.

    Args:
        spec: The molecular system.
        config: Conditions and lengths.
        start: Optional ``(positions, velocities)``, each an ``n_atoms x 3`` array in nm and
            nm/ps, to continue a previous run (no minimisation or equilibration then);
            velocities ``None`` draws them from the Maxwell–Boltzmann distribution.
        progress: Called as ``progress(positions, energy, topology)`` with the frames so far
            (``k x n_atoms x 3`` and ``k``) and the OpenMM topology, every
            ``progress_every`` frames before the last: what a running simulation has
            measured so far.
        progress_every: Frames between calls of ``progress``; 0 never calls it.

    Returns:
        ``positions`` (``n_frames x n_atoms x 3`` float32, nm), ``energy`` (``n_frames``,
        kJ/mol), ``final_positions``/``final_velocities`` (``n_atoms x 3``), ``wall_s``,
        ``n_steps``, ``platform`` (its name), ``topology`` (the OpenMM topology).

    Raises:
        SimulationFailed: If energy or coordinates become non-finite.
    """
    import openmm
    from openmm import unit

    topology, system, positions = build_system(spec)
    integrator = openmm.LangevinMiddleIntegrator(
        config.temperature * unit.kelvin,
        config.friction_per_ps / unit.picosecond,
        config.timestep_fs * unit.femtosecond,
    )
    integrator.setRandomNumberSeed(int(config.seed) % 2**31 + 1)
    platform, props = choose_platform(config.platform, spec, config.threads)
    context = openmm.Context(system, integrator, platform, props)
    t0 = time.perf_counter()
    if start is None:
        context.setPositions(positions)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
        context.setVelocitiesToTemperature(config.temperature * unit.kelvin, int(config.seed) + 1)
        n_eq = int(round(config.equilibrate_ps * 1000.0 / config.timestep_fs))
        if n_eq > 0:
            integrator.step(n_eq)
    else:
        context.setPositions(np.asarray(start[0], dtype=np.float64))
        context.applyConstraints(1e-6)
        if start[1] is None:
            context.setVelocitiesToTemperature(
                config.temperature * unit.kelvin, int(config.seed) + 1
            )
        else:
            context.setVelocities(start[1])
    steps_per_frame = max(1, int(round(config.frame_ps * 1000.0 / config.timestep_fs)))
    n_frames = max(1, int(round(config.length_ps / config.frame_ps)))
    n_atoms = system.getNumParticles()
    frames = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    energy = np.empty(n_frames, dtype=np.float64)
    for k in range(n_frames):
        integrator.step(steps_per_frame)
        state = context.getState(getPositions=True, getEnergy=True)
        e = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if not math.isfinite(e) or not np.all(np.isfinite(pos)):
            raise SimulationFailed(
                f"simulation blew up at {(k + 1) * config.frame_ps:g} ps "
                f"(potential energy {e}); try a smaller timestep or check the structure"
            )
        frames[k] = pos
        energy[k] = e
        done = k + 1
        if progress is not None and progress_every > 0 and done % progress_every == 0:
            if done < n_frames:
                progress(frames[:done], energy[:done], topology)
    final = context.getState(getPositions=True, getVelocities=True)
    wall = time.perf_counter() - t0
    return {
        "positions": frames,
        "energy": energy,
        "final_positions": final.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
        "final_velocities": final.getVelocities(asNumpy=True).value_in_unit(
            unit.nanometer / unit.picosecond
        ),
        "wall_s": wall,
        "n_steps": n_frames * steps_per_frame,
        "platform": platform.getName(),
        "topology": topology,
    }
