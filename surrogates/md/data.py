"""The MD data set on disk: trajectories at several temperatures plus the molecule's chemistry.

Made by :mod:`flows.md_data` (see ``data/md/README.md``). The file is one compressed ``npz``:
``pos_i`` (``n_frames x n_atoms x 3`` float16, centred, nm), ``energy_i`` and a JSON ``meta``
with the design, the chemistry (atom kinds, bonds and their force-field lengths, the φ/ψ atoms),
the basin definition, and per trajectory its temperature, seed, role (``train`` or
``reference``) and OpenMM's wall time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.md.molecule import Molecule

#: The committed data set.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "data" / "md" / "alanine_vacuum.npz"


@dataclass
class Trajectory:
    """One real simulation.

    Attributes:
        positions: ``n_frames x n_atoms x 3`` float32 tensor (nm).
        temperature: Kelvin.
        seed: Seed of the run.
        role: ``"train"`` or ``"reference"``.
        frame_ps: Interval between frames, ps.
        openmm_s_per_ns: OpenMM wall seconds per simulated ns for this run.
    """

    positions: Tensor
    temperature: float
    seed: int
    role: str
    frame_ps: float
    openmm_s_per_ns: float


@dataclass
class MDDataset:
    """All trajectories and the molecule."""

    molecule: Molecule
    trajectories: list[Trajectory]
    meta: dict[str, Any]

    def select(self, role: str | None = None, temperature: float | None = None) -> list[Trajectory]:
        """Trajectories with the given role and/or temperature."""
        return [
            t
            for t in self.trajectories
            if (role is None or t.role == role)
            and (temperature is None or abs(t.temperature - temperature) < 1e-6)
        ]

    @property
    def train_temperatures(self) -> list[float]:
        return [float(t) for t in self.meta["design"]["train_temperatures"]]

    @property
    def heldout_temperatures(self) -> list[float]:
        return [float(t) for t in self.meta["design"]["heldout_temperatures"]]


def load_dataset(path: str | Path | None = None) -> MDDataset:
    """Read the data set.

    Raises:
        WorldModelError: If the file is missing or not an MD data set.
    """
    path = Path(path) if path is not None else DEFAULT_DATA
    if not path.is_file():
        raise WorldModelError(
            f"MD data set {path} not found; make it with `python -m flows.md_data --out {path}`"
        )
    try:
        with np.load(path) as f:
            meta = json.loads(str(f["meta"]))
            trajs = [
                Trajectory(
                    positions=torch.from_numpy(f[f"pos_{t['index']}"].astype(np.float32)),
                    temperature=float(t["temperature"]),
                    seed=int(t["seed"]),
                    role=str(t["role"]),
                    frame_ps=float(t["frame_ps"]),
                    openmm_s_per_ns=float(t["openmm_s_per_ns"]),
                )
                for t in meta["trajectories"]
            ]
        molecule = Molecule.from_meta(meta["system"])
    except (KeyError, ValueError, OSError) as exc:
        raise WorldModelError(
            f"{path} is not an MD data set made by flows.md_data: {exc}"
        ) from None
    return MDDataset(molecule, trajs, meta)


def sample_pairs(
    trajectories: list[Trajectory],
    taus_ps: tuple[float, ...],
    batch: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random transitions ``(x(t), x(t + τ))`` from training trajectories.

    Returns:
        ``xc`` (``B x n x 3``), ``xnext`` (``B x n x 3``), ``conditions`` (``B x 1``,
        temperature), ``tau`` (``B``).
    """
    ti = torch.randint(len(trajectories), (batch,), generator=generator)
    tau_i = torch.randint(len(taus_ps), (batch,), generator=generator)
    xc, xn, cond, tau = [], [], [], []
    for a, b in zip(ti.tolist(), tau_i.tolist(), strict=True):
        traj = trajectories[a]
        lag = int(round(taus_ps[b] / traj.frame_ps))
        k = int(torch.randint(traj.positions.shape[0] - lag, (1,), generator=generator))
        xc.append(traj.positions[k])
        xn.append(traj.positions[k + lag])
        cond.append(traj.temperature)
        tau.append(taus_ps[b])
    return (
        torch.stack(xc),
        torch.stack(xn),
        torch.tensor(cond).unsqueeze(-1),
        torch.tensor(tau),
    )
