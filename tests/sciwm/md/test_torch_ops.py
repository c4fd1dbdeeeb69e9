"""The torch observables equal the NumPy ones on the same frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciwm.md import observables as mo
from sciwm.md import torch_ops as to
from tests.sciwm.md.test_observables import four_points


@pytest.mark.parametrize("theta", [0.0, 60.0, -60.0, 120.0, -179.0, 180.0, 90.0])
def test_dihedral_matches_numpy_on_hand_cases(theta: float) -> None:
    x = four_points(theta)
    assert math.isclose(
        float(to.dihedral(torch.tensor(x), (0, 1, 2, 3))),
        float(mo.dihedral(x, (0, 1, 2, 3))),
        abs_tol=1e-9,
    )


def test_frame_observables_match_numpy(alanine, frames) -> None:
    molecule, _ = alanine
    x = torch.from_numpy(frames)  # float64: the same arithmetic as NumPy's
    phi_t, psi_t = to.phi_psi(x, molecule)
    phi, psi = mo.dihedral(frames, molecule.phi), mo.dihedral(frames, molecule.psi)
    np.testing.assert_allclose(phi_t.numpy(), phi, atol=1e-9)
    np.testing.assert_allclose(psi_t.numpy(), psi, atol=1e-9)
    got = to.frame_observables(x.reshape(4, 50, 22, 3), molecule)  # a batch shape is kept
    want = mo.frame_values(phi, psi)
    assert list(got) == list(want) == list(mo.PER_FRAME)
    for name in mo.PER_FRAME:
        assert got[name].shape == (4, 50)
        np.testing.assert_allclose(got[name].reshape(-1).numpy(), want[name], atol=1e-9)
    assert len({tuple(v) for v in to.basin_onehot(phi_t, psi_t).tolist()}) == 3  # all basins


def test_valid_frames_match_bond_valid(alanine, frames) -> None:
    molecule, xyz = alanine
    bonds, r0 = np.array(molecule.bonds), np.array(molecule.r0)
    x = np.concatenate([xyz[None], frames[:20]])
    want = mo.bond_valid(x, bonds, r0)
    got = to.valid_frames(torch.from_numpy(x), torch.from_numpy(bonds), torch.from_numpy(r0))
    assert got.tolist() == want.tolist()
    assert want[0] and not want[1:].all()  # the built structure is valid, noisy frames not
    lengths = to.bond_lengths(torch.from_numpy(xyz), torch.from_numpy(bonds))
    np.testing.assert_allclose(lengths.numpy(), r0, rtol=0.05)
