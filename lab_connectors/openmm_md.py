"""The OpenMM connector: real molecular-dynamics simulations as experiments.

Each experiment runs one Langevin simulation in a detached worker process (the machinery of
:class:`lab_connectors.local.LocalConnector`: idempotent submit, re-attach after a crash,
time limits, dead workers and exceptions as ``FAILED`` observations). The worker runs the
domain's engine (:func:`sciwm.md.engine.simulate`) on the domain's system
(:mod:`sciwm.md.systems`), saves the trajectory to ``<workdir>/<experiment id>/trajectory.npz``
and reports the observables of :mod:`sciwm.md.observables` as outcomes and its wall time as
cost.

Experiment parameters (the campaign's search space) that the worker understands:

* ``temperature`` — Kelvin, 50–1000 (required);
* ``length_ps`` — simulated time after equilibration, ps (the natural fidelity; default 10);
* ``friction_per_ps``, ``timestep_fs``, ``seed`` — optional overrides.

Settings (``[connector.settings]``): ``pdb`` (default: the embedded alanine dipeptide),
``forcefield`` (default ``["amber14-all.xml"]``), ``solvent`` (``"vacuum"``, ``"obc2"``,
``"gbn2"``), ``platform`` (``"auto"``: Reference in vacuum, CPU otherwise; ``"CUDA"`` where
present), ``frame_ps``, ``equilibrate_ps``, ``partial_every_ps``, ``observables``,
``timeout_s``, ``parallelism``.

A running simulation reports what it has measured so far (:meth:`OpenMMConnector.partial`):
every ``partial_every_ps`` of simulated time (default: a tenth of the run's length; 0 turns
it off) the worker appends the observables of the frames so far, with ``length_ps`` as their
fidelity and the wall time so far as their cost, to ``<experiment dir>/partial.jsonl``. With
``length_ps`` a fidelity of the campaign's space, early stopping reads them
(:mod:`scheduler.early_stop`).

``observables`` adds the user's own outcomes: import paths of functions
``fn(positions, energy, info) -> float`` (see :data:`sciwm.md.observables.Observable`), each
reported under its function's name, or a table of outcome name to import path::

    [connector.settings]
    observables = ["mylab.md_obs:end_to_end_nm"]
    # or: observables = { e2e = "mylab.md_obs:end_to_end_nm" }

The worker process imports them (it has the campaign's ``sys.path`` and working directory);
the connector imports them once when it is built, so a bad path fails before the first
experiment.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lab_connectors.local import LocalConnector
from sciwm.connector import Handle
from sciwm.errors import ConnectorError
from sciwm.md.engine import platform_names
from sciwm.md.observables import load_observable, observable_refs
from sciwm.md.systems import SystemSpec, build_system

#: Environment variable that carries the system and run settings to the worker.
CONFIG_ENV = "SCIWM_MD_CONFIG"
#: Physical range accepted for the temperature, Kelvin.
TEMPERATURE_RANGE = (50.0, 1000.0)
#: File in the experiment's directory that holds a running simulation's partial results.
PARTIAL_FILE = "partial.jsonl"
#: Default interval of partial results, as a fraction of the run's length.
PARTIAL_FRACTION = 0.1


class OpenMMConnector(LocalConnector):
    """Runs real OpenMM simulations, one detached worker process per experiment.

    Args:
        workdir: Directory owned by the connector for this campaign.
        pdb: PDB file with hydrogens; ``None`` for the embedded alanine dipeptide.
        forcefield: OpenMM force-field XML files.
        solvent: ``"vacuum"`` or an implicit-solvent model (``"obc2"``, ``"gbn2"``).
        platform: OpenMM platform name, or ``"auto"``.
        frame_ps: Interval between saved frames, ps.
        equilibrate_ps: Discarded equilibration before the recorded run, ps.
        partial_every_ps: Simulated time between partial results, ps; ``None`` for a tenth
            of each run's length, 0 for none.
        threads: Threads of the CPU platform (one is fastest for small molecules).
        observables: The user's observables: import paths ``"package.module:function"``
            (each reported under the function's name) or a table of name to import path.
        timeout_s: Wall-time limit per simulation, s.
        parallelism: Simulations run side by side.

    Raises:
        ConnectorError: If a setting is invalid or the force field cannot parameterise the
            molecule (checked once here, so a campaign fails before its first experiment).
    """

    name: ClassVar[str] = "openmm"

    def __init__(
        self,
        workdir: str | Path,
        pdb: str | None = None,
        forcefield: str | list[str] = "amber14-all.xml",
        solvent: str = "vacuum",
        platform: str = "auto",
        frame_ps: float = 1.0,
        equilibrate_ps: float = 5.0,
        partial_every_ps: float | None = None,
        threads: int = 1,
        observables: list[str] | dict[str, str] | None = None,
        timeout_s: float = 3600.0,
        parallelism: int = 1,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConnectorError(
                f"unknown setting(s) {sorted(unknown)} for the openmm connector; known: pdb, "
                "forcefield, solvent, platform, frame_ps, equilibrate_ps, partial_every_ps, "
                "threads, observables, timeout_s, parallelism"
            )
        spec = SystemSpec.from_settings(
            {
                "pdb": None if pdb is None else str(Path(pdb).resolve()),
                "forcefield": forcefield,
                "solvent": solvent,
            }
        )
        build_system(spec)  # fail now on a molecule the force field cannot parameterise
        for key, value in (("frame_ps", frame_ps), ("equilibrate_ps", equilibrate_ps)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConnectorError(f"openmm connector setting {key}={value!r}; give ps >= 0")
        if frame_ps <= 0:
            raise ConnectorError("openmm connector setting frame_ps must be > 0")
        if partial_every_ps is not None and (
            isinstance(partial_every_ps, bool)
            or not isinstance(partial_every_ps, int | float)
            or not math.isfinite(partial_every_ps)
            or partial_every_ps < 0
        ):
            raise ConnectorError(
                f"openmm connector setting partial_every_ps={partial_every_ps!r}; give ps >= 0 "
                "(0: no partial results) or leave it out (a tenth of each run)"
            )
        _check_platform(platform)
        refs = observable_refs(observables)
        for ref in refs.values():
            load_observable(ref)  # fail now on a path the worker could not import either
        self.system_spec = spec
        run = {
            "frame_ps": float(frame_ps),
            "equilibrate_ps": float(equilibrate_ps),
            "partial_every_ps": None if partial_every_ps is None else float(partial_every_ps),
            "platform": platform,
            "threads": int(threads),
            "observables": refs,
        }
        payload = json.dumps({"system": spec.to_dict(), "run": run})
        super().__init__(
            workdir,
            function="lab_connectors.openmm_md:run_md_experiment",
            timeout_s=timeout_s,
            parallelism=parallelism,
            env={CONFIG_ENV: payload, "OMP_NUM_THREADS": str(int(threads))},
            outcome="pop_alpha_r",
        )
        self.settings.update(spec.to_dict())
        self.settings.update(run)

    def partial(self, handle: Handle) -> list[dict[str, Any]]:
        """The observables of a running simulation's frames so far, oldest first.

        Each point has ``{"fidelity": {"length_ps": simulated ps so far}, "outcomes": {...},
        "cost": wall s so far}``; a simulation that reports none (``partial_every_ps = 0``,
        or not yet at its first report) gives ``[]``.
        """
        path = Path(str(handle.get("dir", ""))) / PARTIAL_FILE
        if not path.is_file():
            return []
        points = []
        for line in path.read_text().splitlines():
            try:
                p = json.loads(line)
            except ValueError:  # a line being written
                break
            points.append(
                {
                    "fidelity": {"length_ps": float(p["length_ps"])},
                    "outcomes": dict(p["outcomes"]),
                    "cost": float(p["cost"]),
                }
            )
        return points


def _check_platform(name: str) -> None:
    if name == "auto":
        return
    known = platform_names()
    if name not in known:
        raise ConnectorError(
            f"OpenMM platform {name!r} is not available here; available: {known} (or 'auto')"
        )


def check_conditions(temperature: Any, length_ps: Any) -> tuple[float, float]:
    """Validate the physical conditions of one simulation.

    Raises:
        ValueError: With a message naming the bad value (the worker turns it into a
            ``FAILED`` observation).
    """
    try:
        t, length = float(temperature), float(length_ps)
    except (TypeError, ValueError):
        raise ValueError(
            f"temperature={temperature!r} and length_ps={length_ps!r} must be numbers"
        ) from None
    lo, hi = TEMPERATURE_RANGE
    if not (math.isfinite(t) and lo <= t <= hi):
        raise ValueError(f"temperature {t} K is outside the physical range [{lo:g}, {hi:g}] K")
    if not (math.isfinite(length) and 0 < length <= 1e6):
        raise ValueError(f"length_ps {length} must be > 0 and at most 1e6 ps (1 µs)")
    return t, length


def run_md_experiment(
    temperature: float,
    length_ps: float = 10.0,
    friction_per_ps: float = 1.0,
    timestep_fs: float = 2.0,
    seed: int | None = None,
    **others: Any,
) -> dict[str, Any]:
    """Run one simulation in the worker process (called by the local worker).

    Returns:
        ``{"outcomes": observables, "cost": wall time (s) from the call to the saved
        trajectory (OpenMM start-up, minimisation and equilibration included),
        "metadata": {...}}``.

    Raises:
        ValueError: If the conditions are unphysical or a parameter is unknown.
        SimulationFailed: If the simulation blows up (non-finite energy).
        ConnectorError: If a user observable cannot be imported or returns no number.
    """
    import time

    t_enter = time.perf_counter()
    from sciwm.md.engine import RunConfig, simulate
    from sciwm.md.observables import compute_observables

    if others:
        raise ValueError(
            f"unknown experiment parameter(s) {sorted(others)}; the openmm connector takes "
            "temperature, length_ps, friction_per_ps, timestep_fs and seed"
        )
    t, length = check_conditions(temperature, length_ps)
    payload = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    spec = SystemSpec.from_dict(payload.get("system", {}))
    run = payload.get("run", {})
    exp_id = os.environ.get("SCIWM_EXPERIMENT_ID", "md")
    if seed is None:
        seed = int.from_bytes(exp_id.encode()[-4:].rjust(4, b"\0"), "little") % 2**30
    config = RunConfig(
        temperature=t,
        length_ps=length,
        frame_ps=float(run.get("frame_ps", 1.0)),
        timestep_fs=float(timestep_fs),
        friction_per_ps=float(friction_per_ps),
        equilibrate_ps=float(run.get("equilibrate_ps", 5.0)),
        seed=int(seed),
        platform=str(run.get("platform", "auto")),
        threads=int(run.get("threads", 1)),
    )
    every_ps = run.get("partial_every_ps")
    every_ps = length * PARTIAL_FRACTION if every_ps is None else float(every_ps)
    every = int(round(every_ps / config.frame_ps)) if every_ps > 0 else 0
    directory = Path(os.environ.get("SCIWM_EXPERIMENT_DIR", "."))

    def report(positions: np.ndarray, energy: np.ndarray, topology: Any) -> None:
        """Append the observables of the frames so far to the partial-results file."""
        so_far = compute_observables(positions, energy, topology, run.get("observables"))
        point = {
            "length_ps": positions.shape[0] * config.frame_ps,
            "outcomes": so_far,
            "cost": time.perf_counter() - t_enter,
        }
        with open(directory / PARTIAL_FILE, "a") as fh:
            fh.write(json.dumps(point) + "\n")

    out = simulate(spec, config, progress=report, progress_every=max(0, every))
    outcomes = compute_observables(
        out["positions"], out["energy"], out["topology"], run.get("observables")
    )
    traj = directory / "trajectory.npz"
    np.savez_compressed(traj, positions=out["positions"], energy=out["energy"])
    return {
        "outcomes": outcomes,
        "cost": time.perf_counter() - t_enter,
        "metadata": {
            "simulation_wall_s": out["wall_s"],
            "trajectory": str(traj),
            "artifacts": [str(traj)],
            "n_steps": out["n_steps"],
            "n_frames": int(out["positions"].shape[0]),
            "platform": out["platform"],
            "seed": int(seed),
        },
    }
