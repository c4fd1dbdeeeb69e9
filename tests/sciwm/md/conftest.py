"""Fixtures: alanine dipeptide as OpenMM builds it (molecule, positions) and noisy frames."""

from __future__ import annotations

import numpy as np
import pytest

from sciwm.md.molecule import Molecule


@pytest.fixture(scope="module")
def alanine() -> tuple[Molecule, np.ndarray]:
    """The embedded alanine dipeptide: its :class:`Molecule` and ``22 x 3`` positions (nm)."""
    pytest.importorskip("openmm")
    from openmm import unit

    from sciwm.md.systems import SystemSpec, build_system, system_meta

    _, _, positions = build_system(SystemSpec())
    xyz = np.asarray(positions.value_in_unit(unit.nanometer), dtype=np.float64)
    return Molecule.from_meta(system_meta(SystemSpec())), xyz


@pytest.fixture
def frames(alanine: tuple[Molecule, np.ndarray]) -> np.ndarray:
    """``200 x 22 x 3`` frames: the structure with 0.05 nm of seeded noise (all three basins)."""
    rng = np.random.default_rng(0)
    return alanine[1][None] + 0.05 * rng.standard_normal((200, 22, 3))
