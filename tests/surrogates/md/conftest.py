"""Fixtures: the alanine-dipeptide molecule and a tiny emulator (no data set needed)."""

from __future__ import annotations

import pytest
import torch

from sciwm.md.molecule import Molecule
from surrogates.md.egnn import NetConfig
from surrogates.md.flow import FlowConfig, FlowEmulator

# ACE-ALA-NME: element kinds (H=0, C=1, N=2, O=3), bonds and amber14 lengths (nm).
KINDS = (0, 1, 0, 0, 1, 3, 2, 0, 1, 0, 1, 0, 0, 0, 1, 3, 2, 0, 1, 0, 0, 0)
BONDS = (
    (0, 1),
    (1, 2),
    (1, 3),
    (1, 4),
    (4, 5),
    (4, 6),
    (6, 7),
    (6, 8),
    (8, 9),
    (8, 10),
    (8, 14),
    (10, 11),
    (10, 12),
    (10, 13),
    (14, 15),
    (14, 16),
    (16, 17),
    (16, 18),
    (18, 19),
    (18, 20),
    (18, 21),
)
R0 = (
    0.109,
    0.109,
    0.109,
    0.1522,
    0.1229,
    0.1335,
    0.101,
    0.1449,
    0.109,
    0.1526,
    0.1522,
    0.109,
    0.109,
    0.109,
    0.1229,
    0.1335,
    0.101,
    0.1449,
    0.109,
    0.109,
    0.109,
)
# The tleap geometry (Å -> nm).
XYZ = [
    (2.000, 1.000, 0.0),
    (2.000, 2.090, 0.0),
    (1.486, 2.454, 0.890),
    (1.486, 2.454, -0.890),
    (3.427, 2.641, 0.0),
    (4.391, 1.877, 0.0),
    (3.555, 3.970, 0.0),
    (2.733, 4.556, 0.0),
    (4.853, 4.614, 0.0),
    (5.408, 4.316, 0.890),
    (5.661, 4.221, -1.232),
    (5.123, 4.521, -2.131),
    (6.630, 4.719, -1.206),
    (5.809, 3.141, -1.241),
    (4.713, 6.129, 0.0),
    (3.601, 6.653, 0.0),
    (5.846, 6.835, 0.0),
    (6.737, 6.359, 0.0),
    (5.846, 8.284, 0.0),
    (4.819, 8.648, 0.0),
    (6.360, 8.648, 0.890),
    (6.360, 8.648, -0.890),
]


@pytest.fixture
def molecule() -> Molecule:
    return Molecule(KINDS, BONDS, R0, (4, 6, 8, 14), (6, 8, 14, 16))


@pytest.fixture
def geometry() -> torch.Tensor:
    """``22 x 3`` alanine dipeptide, nm."""
    return torch.tensor(XYZ) / 10.0


@pytest.fixture
def tiny(molecule: Molecule) -> FlowEmulator:
    torch.manual_seed(0)
    config = FlowConfig(net=NetConfig(hidden=16, layers=2, n_rbf=6), ode_steps=2)
    return FlowEmulator(molecule, config).eval()


def random_rotation(seed: int) -> torch.Tensor:
    """A proper ``3 x 3`` rotation matrix."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
