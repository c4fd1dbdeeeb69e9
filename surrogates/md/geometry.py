"""The emulator's geometry on batched coordinates in torch: centring, Kabsch alignment, the
bond projection (its constraint step), chirality.

Every function takes coordinates as a ``... x n_atoms x 3`` tensor (nm) and is written so that
its outputs transform as they should under rotations and translations of the input. The
observables of configurations (dihedrals, basins, bond validity) are the domain's, in
:mod:`sciwm.md.torch_ops`.
"""

from __future__ import annotations

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


def project_bonds(
    x: Tensor, bonds: Tensor, r0: Tensor, iterations: int = 30, relax: float = 1.5
) -> Tensor:
    """SHAKE-like projection of atom-pair distances onto target lengths (equal masses).

    Every sweep corrects all pairs at once (Jacobi): each pair's error is split equally
    between its two atoms along the pair, each atom's corrections are averaged over the pairs
    it is in and over-relaxed by ``relax``. One sweep is a handful of vectorised operations,
    which is what makes it cheap inside a rollout; moves are along pair vectors, so the result
    is equivariant.

    Args:
        x: A ``... x n x 3`` tensor.
        bonds: A ``n_pairs x 2`` long tensor (any atom pairs: bonds, or 1-3 pairs for angles).
        r0: A ``n_pairs`` tensor, or ``... x n_pairs`` (a target length per configuration).
        iterations: Sweeps.
        relax: Over-relaxation factor (1 is plain averaging; below 2 converges here).

    Returns:
        Same shape as ``x``.
    """
    n = x.shape[-2]
    a, b = bonds[:, 0], bonds[:, 1]
    target = r0.to(x).unsqueeze(-1)
    degree = torch.zeros(n, dtype=x.dtype, device=x.device)
    degree.index_add_(0, bonds.reshape(-1), torch.ones(bonds.numel(), dtype=x.dtype))
    scale = (relax / degree.clamp(min=1.0)).unsqueeze(-1)
    for _ in range(iterations):
        d = x[..., a, :] - x[..., b, :]
        length = d.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        corr = 0.5 * (length - target) * d / length
        delta = torch.zeros_like(x).index_add_(-2, a, -corr).index_add_(-2, b, corr)
        x = x + scale * delta
    return x


def chirality(x: Tensor, centres: Tensor) -> Tensor:
    """Handedness of sp3 centres: sign of the volume of three of their bond vectors.

    Proper rotations and translations keep it; inverting a centre (unphysical in MD) flips it.

    Args:
        x: A ``... x n x 3`` tensor.
        centres: A ``n_centres x 4`` long tensor: centre atom, then three bonded neighbours.

    Returns:
        A ``... x n_centres`` tensor of +1/-1.
    """
    c = x[..., centres[:, 0], :]
    a, b, d = (x[..., centres[:, k], :] - c for k in (1, 2, 3))
    return torch.sign((torch.cross(a, b, dim=-1) * d).sum(-1))


def sp3_centres(n: int, bonds: Tensor, kinds: Tensor | None = None) -> Tensor:
    """Stereocentres: atoms with four bonds, each with its first three neighbours.

    A centre with two or more terminal neighbours of the same kind (a methyl carbon's three
    hydrogens) is not chiral: its mirror image is the same molecule with like atoms relabelled,
    so it is left out when ``kinds`` is given.

    Args:
        n: Number of atoms.
        bonds: A ``n_bonds x 2`` long tensor.
        kinds: Optional ``n`` atom kinds.

    Returns:
        A ``n_centres x 4`` long tensor.
    """
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in bonds.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)
    rows = []
    for i, nb in enumerate(neighbours):
        if len(nb) != 4:
            continue
        if kinds is not None:
            terminal = [int(kinds[j]) for j in nb if len(neighbours[j]) == 1]
            if len(terminal) != len(set(terminal)):
                continue
        rows.append([i, *sorted(nb)[:3]])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 4)
