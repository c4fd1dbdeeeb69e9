"""The per-frame observables of :mod:`sciwm.md.observables` on batched torch tensors.

The emulator rolls out batches of trajectories as tensors (on a GPU where there is one) and
needs the dihedrals, basins and bond validity of every frame without a round trip through
NumPy; these are the same definitions as the NumPy ones (same formulas, same basin
boundaries, tested against them in ``tests/sciwm/md/test_torch_ops.py``). Every function takes
coordinates as a ``... x n_atoms x 3`` tensor (nm) and keeps its leading batch shape.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sciwm.md.molecule import Molecule
from sciwm.md.observables import ALPHA_R_PSI, PER_FRAME


def dihedral(x: Tensor, idx: tuple[int, int, int, int]) -> Tensor:
    """Dihedral angle of four atoms (as :func:`sciwm.md.observables.dihedral`).

    Args:
        x: A ``... x n x 3`` tensor.
        idx: Atom indices ``(a, b, c, d)``.

    Returns:
        A ``...`` tensor of angles in degrees in (-180, 180].
    """
    p0, p1, p2, p3 = (x[..., i, :] for i in idx)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / b1.norm(dim=-1, keepdim=True)
    v = b0 - (b0 * b1).sum(-1, keepdim=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdim=True) * b1
    xx = (v * w).sum(-1)
    yy = (torch.cross(b1, v, dim=-1) * w).sum(-1)
    return torch.atan2(yy, xx) * (180.0 / math.pi)


def phi_psi(x: Tensor, molecule: Molecule) -> tuple[Tensor, Tensor]:
    """Backbone φ and ψ in degrees.

    Args:
        x: A ``... x n x 3`` tensor.
        molecule: The system (its ``phi``/``psi`` atoms).

    Returns:
        Two ``...`` tensors.
    """
    return dihedral(x, molecule.phi), dihedral(x, molecule.psi)


def basin_onehot(
    phi: Tensor, psi: Tensor, alpha_r_psi: tuple[float, float] = ALPHA_R_PSI
) -> Tensor:
    """One-hot basin of each frame (as :func:`sciwm.md.observables.basin_labels`).

    Args:
        phi: A ``...`` tensor of φ in degrees.
        psi: A ``...`` tensor of ψ in degrees.
        alpha_r_psi: ``(lo, hi)`` ψ bounds of the αR basin.

    Returns:
        A ``... x 3`` float64 tensor over (beta, alpha_r, alpha_l).
    """
    lo, hi = alpha_r_psi
    alpha_l = phi > 0
    alpha_r = (~alpha_l) & (psi > lo) & (psi <= hi)
    beta = (~alpha_l) & (~alpha_r)
    return torch.stack([beta, alpha_r, alpha_l], dim=-1).to(torch.float64)


def frame_observables(
    x: Tensor, molecule: Molecule, alpha_r_psi: tuple[float, float] = ALPHA_R_PSI
) -> dict[str, Tensor]:
    """Per-frame value of each observable of :data:`~sciwm.md.observables.PER_FRAME`
    (as :func:`sciwm.md.observables.frame_values`).

    Args:
        x: A ``... x n x 3`` tensor of configurations.
        molecule: The system.
        alpha_r_psi: ``(lo, hi)`` ψ bounds of the αR basin.

    Returns:
        Name to a ``...`` float64 tensor.
    """
    phi, psi = phi_psi(x, molecule)
    onehot = basin_onehot(phi, psi, alpha_r_psi)
    out = {
        "pop_beta": onehot[..., 0],
        "pop_alpha_r": onehot[..., 1],
        "pop_alpha_l": onehot[..., 2],
        "phi_mean_cos": torch.cos(phi.double() * math.pi / 180.0),
        "psi_mean_cos": torch.cos(psi.double() * math.pi / 180.0),
    }
    return {name: out[name] for name in PER_FRAME}


def bond_lengths(x: Tensor, bonds: Tensor) -> Tensor:
    """Lengths of bonds.

    Args:
        x: A ``... x n x 3`` tensor.
        bonds: A ``n_bonds x 2`` long tensor.

    Returns:
        A ``... x n_bonds`` tensor.
    """
    return (x[..., bonds[:, 0], :] - x[..., bonds[:, 1], :]).norm(dim=-1)


def valid_frames(x: Tensor, bonds: Tensor, r0: Tensor, tol: float = 0.10) -> Tensor:
    """Whether every bond is within ``tol`` (relative) of its force-field length (as
    :func:`sciwm.md.observables.bond_valid`).

    Args:
        x: A ``... x n x 3`` tensor.
        bonds: A ``n_bonds x 2`` long tensor.
        r0: A ``n_bonds`` tensor of reference lengths.
        tol: Relative tolerance.

    Returns:
        A boolean ``...`` tensor.
    """
    return ((bond_lengths(x, bonds) - r0).abs() <= tol * r0).all(dim=-1)


__all__ = [
    "basin_onehot",
    "bond_lengths",
    "dihedral",
    "frame_observables",
    "phi_psi",
    "valid_frames",
]
