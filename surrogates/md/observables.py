"""Observables computed from emulated configurations (torch), matching the connector's.

The basin definition comes with the data set (``meta["basins"]``), so the emulator and the
real simulations are judged by the same boundaries.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from surrogates.md.flow import Molecule
from surrogates.md.geometry import dihedral

#: Observables the emulator can compute from configurations alone.
EMULATED = ("pop_beta", "pop_alpha_r", "pop_alpha_l", "phi_mean_cos", "psi_mean_cos")


def phi_psi(x: Tensor, molecule: Molecule) -> tuple[Tensor, Tensor]:
    """Backbone dihedrals in degrees of a ``... x n x 3`` tensor; each ``...``."""
    return dihedral(x, molecule.phi), dihedral(x, molecule.psi)


def basin_onehot(phi: Tensor, psi: Tensor, alpha_r_psi: tuple[float, float]) -> Tensor:
    """``... x 3`` one-hot of (beta, alpha_r, alpha_l); see lab_connectors.md_observables."""
    lo, hi = alpha_r_psi
    alpha_l = phi > 0
    alpha_r = (~alpha_l) & (psi > lo) & (psi <= hi)
    beta = (~alpha_l) & (~alpha_r)
    return torch.stack([beta, alpha_r, alpha_l], dim=-1).to(torch.float64)


def frame_observables(
    x: Tensor, molecule: Molecule, alpha_r_psi: tuple[float, float]
) -> dict[str, Tensor]:
    """Per-frame values whose time average is each observable in :data:`EMULATED`.

    Args:
        x: ``... x n x 3`` configurations.

    Returns:
        Name to a ``...`` tensor.
    """
    phi, psi = phi_psi(x, molecule)
    onehot = basin_onehot(phi, psi, alpha_r_psi)
    return {
        "pop_beta": onehot[..., 0],
        "pop_alpha_r": onehot[..., 1],
        "pop_alpha_l": onehot[..., 2],
        "phi_mean_cos": torch.cos(phi.double() * math.pi / 180.0),
        "psi_mean_cos": torch.cos(psi.double() * math.pi / 180.0),
    }
