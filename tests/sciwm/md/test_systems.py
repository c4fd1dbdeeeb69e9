"""Systems and the molecule: what OpenMM builds, the emulator's chemistry, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openmm")

from sciwm.errors import ConnectorError  # noqa: E402
from sciwm.md.molecule import Molecule  # noqa: E402
from sciwm.md.systems import (  # noqa: E402
    KINDS,
    SystemSpec,
    backbone_dihedral_indices,
    build_system,
    system_meta,
)


def test_alanine_meta_and_molecule() -> None:
    meta = system_meta(SystemSpec())
    molecule = Molecule.from_meta(meta)
    assert molecule.n_atoms == 22 and len(molecule.bonds) == 21
    # ACE C(4) - ALA N(6) CA(8) C(14) - NME N(16)
    assert molecule.phi == (4, 6, 8, 14) and molecule.psi == (6, 8, 14, 16)
    assert [KINDS[k] for k in molecule.kinds].count("H") == 12
    h_bond = molecule.bonds.index((0, 1))  # HH31-CH3, constrained at amber14's 0.109 nm
    assert molecule.r0[h_bond] == pytest.approx(0.109, abs=1e-6)
    topology, _, _ = build_system(SystemSpec())
    idx = backbone_dihedral_indices(topology)
    assert idx == {"phi": [molecule.phi], "psi": [molecule.psi]}
    with pytest.raises(ValueError, match="phi/psi"):
        Molecule.from_meta({**meta, "phi": None})


def test_spec_round_trip_and_bad_settings(tmp_path: Path) -> None:
    spec = SystemSpec.from_settings({"solvent": "obc2", "forcefield": "amber14-all.xml"})
    assert SystemSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConnectorError, match="unknown solvent"):
        SystemSpec.from_settings({"solvent": "water"})
    with pytest.raises(ConnectorError, match="constraints"):
        SystemSpec.from_settings({"constraints": "all"})
    with pytest.raises(ConnectorError, match="does not exist"):
        SystemSpec.from_settings({"pdb": str(tmp_path / "none.pdb")})
    pdb = tmp_path / "bad.pdb"
    pdb.write_text(
        "ATOM      1  C1  XYZ     1       0.000   0.000   0.000  1.00  0.00           C\n"
        "ATOM      2  C2  XYZ     1       1.500   0.000   0.000  1.00  0.00           C\nEND\n"
    )
    with pytest.raises(ConnectorError, match="XYZ"):
        build_system(SystemSpec.from_settings({"pdb": str(pdb)}))
