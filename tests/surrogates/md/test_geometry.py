"""Geometry and observables against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab_connectors import md_observables as mo
from surrogates.md.geometry import (
    bond_lengths,
    dihedral,
    kabsch_align,
    project_bonds,
    valid_frames,
)
from surrogates.md.graph import full_graph, radius_graph, topological_distance
from surrogates.md.observables import frame_observables
from tests.surrogates.md.conftest import random_rotation


def four_points(theta_deg: float) -> np.ndarray:
    """a, b, c, d with b-c along y and the dihedral a-b-c-d equal to ``theta``."""
    t = math.radians(theta_deg)
    return np.array(
        [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [math.cos(t), 1.0, -math.sin(t)]]
    )


@pytest.mark.parametrize("theta", [0.0, 60.0, -60.0, 120.0, -179.0, 180.0, 90.0])
def test_dihedral_hand_cases(theta: float) -> None:
    # With b->c along +y and a along +x, d rotated by theta about +y (right-handed, IUPAC sign).
    x = four_points(theta)
    got_np = float(mo.dihedral(x, (0, 1, 2, 3)))
    got_t = float(dihedral(torch.tensor(x), (0, 1, 2, 3)))
    expected = theta if theta != -180.0 else 180.0
    assert math.isclose(abs(got_np), abs(expected), abs_tol=1e-6)
    assert math.isclose(got_np, got_t, abs_tol=1e-6)
    if 0 < abs(theta) < 180:
        assert math.copysign(1, got_np) == math.copysign(1, theta)


def test_dihedral_invariant_under_rigid_motion() -> None:
    x = torch.tensor(four_points(73.0))
    r = random_rotation(1).double()
    assert torch.allclose(dihedral(x @ r.T + 0.3, (0, 1, 2, 3)), dihedral(x, (0, 1, 2, 3)))
    # a mirror image flips the sign
    mirror = x * torch.tensor([1.0, 1.0, -1.0], dtype=x.dtype)
    assert math.isclose(float(dihedral(mirror, (0, 1, 2, 3))), -73.0, abs_tol=1e-6)


def test_jsd_closed_forms() -> None:
    p = np.array([1.0, 0.0])
    q = np.array([0.5, 0.5])
    m = np.array([0.75, 0.25])
    expected = 0.5 * math.log(1 / 0.75) + 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    assert math.isclose(mo.jsd(p, q), expected, rel_tol=1e-12)
    assert math.isclose(mo.jsd(p, q), mo.jsd(q, p), rel_tol=1e-12)
    assert mo.jsd(q, q) == 0.0
    assert math.isclose(mo.jsd([1, 0], [0, 1]), math.log(2), rel_tol=1e-12)
    assert m.sum() == 1.0
    with pytest.raises(ValueError, match="shape"):
        mo.jsd([1, 0], [1, 0, 0])


def test_histograms_and_basins() -> None:
    phi = np.array([-80.0, -70.0, -60.0, 60.0])
    psi = np.array([70.0, -40.0, 150.0, 40.0])
    assert mo.basin_labels(phi, psi).tolist() == [0, 1, 0, 2]
    pops = mo.basin_populations(phi, psi)
    assert pops == {"beta": 0.5, "alpha_r": 0.25, "alpha_l": 0.25}
    h = mo.histogram(np.array([-179.0, 179.0, 0.5]), bins=4)
    assert h.tolist() == [1 / 3, 0.0, 1 / 3, 1 / 3]
    assert mo.histogram2d(phi, psi, bins=2).sum() == pytest.approx(1.0)


def test_torch_basins_match_numpy(geometry: torch.Tensor, molecule) -> None:
    gen = torch.Generator().manual_seed(0)
    x = geometry + 0.03 * torch.randn(50, 22, 3, generator=gen)
    frames = frame_observables(x, molecule, mo.ALPHA_R_PSI)
    phi = mo.dihedral(x.numpy(), molecule.phi)
    psi = mo.dihedral(x.numpy(), molecule.psi)
    pops = mo.basin_populations(phi, psi)
    for name in mo.BASINS:
        assert float(frames[f"pop_{name}"].mean()) == pytest.approx(pops[name])


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
