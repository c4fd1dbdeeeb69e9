"""The emulator's geometry and graphs against hand-computed cases."""

from __future__ import annotations

import math

import torch

from sciwm.md import observables as mo
from sciwm.md.torch_ops import bond_lengths, dihedral, valid_frames
from surrogates.md.geometry import kabsch_align, project_bonds
from surrogates.md.graph import full_graph, radius_graph, topological_distance
from tests.sciwm.md.test_observables import four_points
from tests.surrogates.md.conftest import random_rotation


def test_dihedral_invariant_under_rigid_motion() -> None:
    x = torch.tensor(four_points(73.0))
    r = random_rotation(1).double()
    assert torch.allclose(dihedral(x @ r.T + 0.3, (0, 1, 2, 3)), dihedral(x, (0, 1, 2, 3)))
    # a mirror image flips the sign
    mirror = x * torch.tensor([1.0, 1.0, -1.0], dtype=x.dtype)
    assert math.isclose(float(dihedral(mirror, (0, 1, 2, 3))), -73.0, abs_tol=1e-6)


def test_kabsch_recovers_rigid_motion(geometry: torch.Tensor) -> None:
    r = random_rotation(3)
    moved = geometry @ r.T + torch.tensor([0.5, -1.0, 2.0])
    aligned = kabsch_align(moved, geometry)
    assert torch.allclose(aligned, geometry, atol=1e-5)


def test_bonds_validity_and_projection(geometry: torch.Tensor, molecule) -> None:
    bonds = torch.tensor(molecule.bonds)
    r0 = torch.tensor(molecule.r0)
    assert valid_frames(geometry, bonds, r0)
    stretched = geometry.clone()
    stretched[0] = geometry[1] + 1.3 * (geometry[0] - geometry[1])  # H-C 30 % too long
    assert not valid_frames(stretched, bonds, r0)
    fixed = project_bonds(stretched, bonds, r0, iterations=50)
    assert torch.allclose(bond_lengths(fixed, bonds), r0, rtol=0.02)
    np_valid = mo.bond_valid(stretched.numpy()[None], bonds.numpy(), r0.numpy())
    assert np_valid.tolist() == [False]


def test_graphs() -> None:
    e = full_graph(4)
    assert e.shape == (2, 12) and not bool((e[0] == e[1]).any())
    x = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [1.0, 0, 0], [1.05, 0, 0]])
    r = radius_graph(x, 0.2)
    assert sorted(map(tuple, r.T.tolist())) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    rb = radius_graph(x, 2.0, batch=torch.tensor([0, 0, 1, 1]))
    assert rb.shape[1] == 4
    # a chain 0-1-2-3-4: hops 1, 2, 3, then capped at 4
    d = topological_distance(5, torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert d[0].tolist() == [0, 1, 2, 3, 4]


def test_chirality_kept_by_rotation_flipped_by_mirror(geometry: torch.Tensor, molecule) -> None:
    from surrogates.md.geometry import chirality, sp3_centres

    centres = sp3_centres(22, torch.tensor(molecule.bonds))
    assert centres[:, 0].tolist() == [1, 8, 10, 18]  # the four sp3 carbons
    chiral = sp3_centres(22, torch.tensor(molecule.bonds), torch.tensor(molecule.kinds))
    assert chiral[:, 0].tolist() == [8]  # only CA: the methyl carbons are not stereocentres
    hand = chirality(geometry, centres)
    r = random_rotation(5)
    assert torch.equal(chirality(geometry @ r.T + 1.0, centres), hand)
    mirror = geometry * torch.tensor([1.0, 1.0, -1.0])
    assert torch.equal(chirality(mirror, centres), -hand)
