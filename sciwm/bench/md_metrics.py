"""What the MD benchmark measures on frames: dihedrals, their distributions' JSD, basins."""

from __future__ import annotations

from typing import Any

import numpy as np

from sciwm.md.observables import (
    BASINS,
    basin_populations,
    dihedral,
    histogram,
    histogram2d,
    jsd,
)


def angles(x: np.ndarray, molecule: Any) -> tuple[np.ndarray, np.ndarray]:
    """The backbone dihedrals of frames.

    Args:
        x: A ``n x atoms x 3`` array of positions (nm).
        molecule: The molecule whose ``phi`` and ``psi`` atom quadruples are read.

    Returns:
        ``phi`` and ``psi``, each a ``n`` array (radians).
    """
    return dihedral(x, molecule.phi), dihedral(x, molecule.psi)


def compare(phi: np.ndarray, psi: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> dict:
    """A method's dihedrals against the reference's: JSDs, basin MAE and its populations.

    Args:
        phi: A ``n`` array of the method's φ (radians).
        psi: A ``n`` array of its ψ.
        ref: The reference's ``(phi, psi)``, each a ``m`` array.

    Returns:
        ``jsd_phi``, ``jsd_psi``, ``jsd_phipsi`` (nats), ``basin_mae`` and ``pops`` (the
        method's basin populations, by basin name).
    """
    pops = basin_populations(phi, psi)
    rpops = basin_populations(*ref)
    return {
        "jsd_phi": jsd(histogram(phi), histogram(ref[0])),
        "jsd_psi": jsd(histogram(psi), histogram(ref[1])),
        "jsd_phipsi": jsd(histogram2d(phi, psi), histogram2d(*ref)),
        "basin_mae": float(np.mean([abs(pops[b] - rpops[b]) for b in BASINS])),
        "pops": pops,
    }


def block_pops(phi: np.ndarray, psi: np.ndarray, blocks: int = 10) -> np.ndarray:
    """Basin populations of consecutive blocks of a trajectory (for their block std).

    Args:
        phi: A ``n`` array of φ (radians).
        psi: A ``n`` array of ψ.
        blocks: Number of blocks.

    Returns:
        A ``blocks x 3`` array, the populations of :data:`BASINS` in each block.
    """
    out = []
    for a, b in zip(np.array_split(phi, blocks), np.array_split(psi, blocks), strict=True):
        p = basin_populations(a, b)
        out.append([p[k] for k in BASINS])
    return np.array(out)
