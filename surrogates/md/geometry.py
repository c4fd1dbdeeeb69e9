"""Geometry on batched coordinates in torch: centring, Kabsch alignment, dihedrals, bonds.

Every function takes coordinates as a ``... x n_atoms x 3`` tensor (nm) and is written so that
its outputs transform as they should under rotations and translations of the input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def centre(x: Tensor) -> Tensor:
    """Subtract the centroid.

    Args:
        x: A ``... x n x 3`` tensor.

    Returns:
        Same shape, centroid at the origin.
    """
    return x - x.mean(dim=-2, keepdim=True)


def kabsch_align(mobile: Tensor, target: Tensor) -> Tensor:
    """Rigidly rotate and translate ``mobile`` onto ``target`` (least squares, no reflection).

    Args:
        mobile: A ``... x n x 3`` tensor.
        target: A ``... x n x 3`` tensor.

    Returns:
        ``mobile`` rotated about its centroid and moved to the centroid of ``target``.
    """
    mc, tc = mobile.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    a, b = mobile - mc, target - tc
    h = a.transpose(-1, -2) @ b
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    diag = torch.ones_like(h[..., 0])
    diag[..., -1] = d
    r = u @ torch.diag_embed(diag) @ vt
    return a @ r + tc


def dihedral(x: Tensor, idx: tuple[int, int, int, int]) -> Tensor:
    """Dihedral angle of four atoms.

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
    """Whether every bond is within ``tol`` (relative) of its force-field length.

    Args:
        x: A ``... x n x 3`` tensor.
        bonds: A ``n_bonds x 2`` long tensor.
        r0: A ``n_bonds`` tensor of reference lengths.

    Returns:
        A boolean ``...`` tensor.
    """
    return ((bond_lengths(x, bonds) - r0).abs() <= tol * r0).all(dim=-1)


def project_bonds(x: Tensor, bonds: Tensor, r0: Tensor, iterations: int = 20) -> Tensor:
    """SHAKE-like projection of every bond onto its reference length (equal masses).

    Moves both atoms of a bond symmetrically along it, so the result stays equivariant.

    Args:
        x: A ``... x n x 3`` tensor.
        bonds: A ``n_bonds x 2`` long tensor.
        r0: A ``n_bonds`` tensor.
        iterations: Sweeps over all bonds (Jacobi style, averaged per atom).

    Returns:
        Same shape as ``x``.
    """
    i, j = bonds[:, 0], bonds[:, 1]
    n = x.shape[-2]
    count = torch.zeros(n, dtype=x.dtype, device=x.device)
    count.index_add_(0, i, torch.ones_like(r0))
    count.index_add_(0, j, torch.ones_like(r0))
    count = count.clamp(min=1.0).unsqueeze(-1)
    for _ in range(iterations):
        d = x[..., i, :] - x[..., j, :]
        length = d.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        corr = 0.5 * (length - r0.unsqueeze(-1)) * d / length
        delta = torch.zeros_like(x)
        delta.index_add_(-2, i, -corr)
        delta.index_add_(-2, j, corr)
        x = x + delta / count
    return x
