"""Molecular systems: the embedded alanine dipeptide and user PDBs, parameterised by OpenMM.

A :class:`SystemSpec` names what to simulate (a PDB, force-field files, the solvent model);
:func:`build_system` turns it into an OpenMM topology, system and positions, and turns every
way a user can get it wrong (unknown residue, missing file, bad solvent) into a
:class:`sciwm.errors.ConnectorError` that names the problem (the spec comes from the
``[connector.settings]`` of an ``openmm`` campaign). :func:`system_meta` is the chemistry an
emulator learns (atom kinds, bonds and their force-field lengths, the backbone dihedrals).
OpenMM is imported inside the functions that need it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciwm.errors import ConnectorError

#: Alanine dipeptide (ACE-ALA-NME, 22 atoms), the standard tleap-built geometry.
ALANINE_DIPEPTIDE_PDB = """\
ATOM      1 HH31 ACE     1       2.000   1.000  -0.000  1.00  0.00           H
ATOM      2  CH3 ACE     1       2.000   2.090   0.000  1.00  0.00           C
ATOM      3 HH32 ACE     1       1.486   2.454   0.890  1.00  0.00           H
ATOM      4 HH33 ACE     1       1.486   2.454  -0.890  1.00  0.00           H
ATOM      5  C   ACE     1       3.427   2.641  -0.000  1.00  0.00           C
ATOM      6  O   ACE     1       4.391   1.877  -0.000  1.00  0.00           O
ATOM      7  N   ALA     2       3.555   3.970  -0.000  1.00  0.00           N
ATOM      8  H   ALA     2       2.733   4.556  -0.000  1.00  0.00           H
ATOM      9  CA  ALA     2       4.853   4.614  -0.000  1.00  0.00           C
ATOM     10  HA  ALA     2       5.408   4.316   0.890  1.00  0.00           H
ATOM     11  CB  ALA     2       5.661   4.221  -1.232  1.00  0.00           C
ATOM     12  HB1 ALA     2       5.123   4.521  -2.131  1.00  0.00           H
ATOM     13  HB2 ALA     2       6.630   4.719  -1.206  1.00  0.00           H
ATOM     14  HB3 ALA     2       5.809   3.141  -1.241  1.00  0.00           H
ATOM     15  C   ALA     2       4.713   6.129   0.000  1.00  0.00           C
ATOM     16  O   ALA     2       3.601   6.653   0.000  1.00  0.00           O
ATOM     17  N   NME     3       5.846   6.835   0.000  1.00  0.00           N
ATOM     18  H   NME     3       6.737   6.359  -0.000  1.00  0.00           H
ATOM     19  CH3 NME     3       5.846   8.284   0.000  1.00  0.00           C
ATOM     20 HH31 NME     3       4.819   8.648   0.000  1.00  0.00           H
ATOM     21 HH32 NME     3       6.360   8.648   0.890  1.00  0.00           H
ATOM     22 HH33 NME     3       6.360   8.648  -0.890  1.00  0.00           H
TER
END
"""

#: Solvent models: force-field files added to the protein force field.
SOLVENTS: dict[str, tuple[str, ...]] = {
    "vacuum": (),
    "obc2": ("implicit/obc2.xml",),
    "gbn2": ("implicit/gbn2.xml",),
}


@dataclass(frozen=True)
class SystemSpec:
    """What to simulate.

    Attributes:
        pdb: Path of a PDB file with hydrogens; ``None`` for the embedded alanine dipeptide.
        forcefield: OpenMM force-field files (names shipped with OpenMM, or paths).
        solvent: ``"vacuum"`` or an implicit-solvent model (``"obc2"``, ``"gbn2"``).
        constraints: ``"HBonds"`` (bonds to hydrogen rigid, 2 fs steps) or ``"none"``.
    """

    pdb: str | None = None
    forcefield: tuple[str, ...] = ("amber14-all.xml",)
    solvent: str = "vacuum"
    constraints: str = "HBonds"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> SystemSpec:
        """Build from connector settings (``pdb``, ``forcefield``, ``solvent``, ``constraints``).

        Raises:
            ConnectorError: If a value has the wrong type or names an unknown solvent.
        """
        ff = settings.get("forcefield", cls.forcefield)
        if isinstance(ff, str):
            ff = (ff,)
        solvent = str(settings.get("solvent", "vacuum"))
        if solvent not in SOLVENTS:
            raise ConnectorError(
                f"unknown solvent {solvent!r}; choose one of {sorted(SOLVENTS)} "
                "(vacuum, or an OpenMM implicit-solvent model)"
            )
        constraints = str(settings.get("constraints", "HBonds"))
        if constraints not in ("HBonds", "none"):
            raise ConnectorError(f"constraints must be 'HBonds' or 'none', got {constraints!r}")
        pdb = settings.get("pdb")
        if pdb is not None and not Path(pdb).is_file():
            raise ConnectorError(f"PDB file {pdb!r} does not exist; give a path to a PDB file")
        return cls(pdb=pdb, forcefield=tuple(ff), solvent=solvent, constraints=constraints)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; :meth:`from_dict` is its inverse."""
        return {
            "pdb": self.pdb,
            "forcefield": list(self.forcefield),
            "solvent": self.solvent,
            "constraints": self.constraints,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SystemSpec:
        """Inverse of :meth:`to_dict` (no checks: the dict came from a checked spec)."""
        ff = data.get("forcefield", cls.forcefield)
        return cls(
            pdb=data.get("pdb"),
            forcefield=(ff,) if isinstance(ff, str) else tuple(ff),
            solvent=str(data.get("solvent", "vacuum")),
            constraints=str(data.get("constraints", "HBonds")),
        )


def build_system(spec: SystemSpec) -> tuple[Any, Any, Any]:
    """Parameterise the molecule.

    Returns:
        ``(topology, system, positions)`` as OpenMM objects.

    Raises:
        ConnectorError: If the PDB cannot be read or the force field cannot parameterise it
            (the message names the residue OpenMM could not match).
    """
    from openmm import app

    try:
        if spec.pdb is None:
            pdb = app.PDBFile(io.StringIO(ALANINE_DIPEPTIDE_PDB))
        else:
            pdb = app.PDBFile(str(spec.pdb))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise ConnectorError(f"cannot read PDB {spec.pdb!r}: {exc}") from None
    files = list(spec.forcefield) + list(SOLVENTS[spec.solvent])
    try:
        ff = app.ForceField(*files)
    except Exception as exc:  # noqa: BLE001
        raise ConnectorError(
            f"cannot load force-field files {files}: {exc}; use files shipped with OpenMM "
            "(e.g. 'amber14-all.xml') or paths to XML files"
        ) from None
    constraints = app.HBonds if spec.constraints == "HBonds" else None
    try:
        system = ff.createSystem(
            pdb.topology, nonbondedMethod=app.NoCutoff, constraints=constraints
        )
    except ValueError as exc:
        raise ConnectorError(
            f"the force field {files} cannot parameterise {spec.pdb or 'alanine dipeptide'}: "
            f"{exc} (add the missing hydrogens or residue templates, or choose another "
            "force field)"
        ) from None
    return pdb.topology, system, pdb.positions


def backbone_dihedral_indices(topology: Any) -> dict[str, list[tuple[int, int, int, int]]]:
    """Atom indices of the backbone φ (C-N-CA-C) and ψ (N-CA-C-N) dihedrals.

    Args:
        topology: An OpenMM topology.

    Returns:
        ``{"phi": [...], "psi": [...]}``, one 4-tuple per defined dihedral, in chain order.
    """
    atoms = list(topology.atoms())
    backbone = [(a.residue.index, a.name, a.index) for a in atoms if a.name in ("N", "CA", "C")]
    by_res: dict[int, dict[str, int]] = {}
    for res, name, idx in backbone:
        by_res.setdefault(res, {})[name] = idx
    residues = sorted(by_res)
    phi, psi = [], []
    for k, r in enumerate(residues):
        cur = by_res[r]
        prev = by_res.get(residues[k - 1]) if k > 0 else None
        nxt = by_res.get(residues[k + 1]) if k + 1 < len(residues) else None
        if prev and "C" in prev and {"N", "CA", "C"} <= cur.keys():
            phi.append((prev["C"], cur["N"], cur["CA"], cur["C"]))
        if nxt and "N" in nxt and {"N", "CA", "C"} <= cur.keys():
            psi.append((cur["N"], cur["CA"], cur["C"], nxt["N"]))
    return {"phi": phi, "psi": psi}


#: Atom kinds used by the emulator's embedding (element symbols; anything else is "X").
KINDS = ("H", "C", "N", "O", "S", "P", "X")


def system_meta(spec: SystemSpec) -> dict[str, Any]:
    """The chemistry an emulator needs, as JSON-able lists.

    Returns:
        ``kinds`` (index into :data:`KINDS` per atom), ``atom_names``, ``bonds`` (pairs),
        ``r0`` (force-field length per bond, nm: the constraint length where a bond is
        constrained, else the harmonic bond's equilibrium), ``phi``/``psi`` (first backbone
        dihedral, or ``None``).
    """
    import openmm

    topology, system, _ = build_system(spec)
    lengths: dict[tuple[int, int], float] = {}
    for f in system.getForces():
        if isinstance(f, openmm.HarmonicBondForce):
            for k in range(f.getNumBonds()):
                i, j, r, _ = f.getBondParameters(k)
                lengths[(min(i, j), max(i, j))] = r.value_in_unit(openmm.unit.nanometer)
    for k in range(system.getNumConstraints()):
        i, j, r = system.getConstraintParameters(k)
        lengths[(min(i, j), max(i, j))] = r.value_in_unit(openmm.unit.nanometer)
    bonds = sorted(
        (min(b[0].index, b[1].index), max(b[0].index, b[1].index)) for b in topology.bonds()
    )
    atoms = list(topology.atoms())
    kinds = [
        KINDS.index(a.element.symbol)
        if a.element is not None and a.element.symbol in KINDS
        else KINDS.index("X")
        for a in atoms
    ]
    dih = backbone_dihedral_indices(topology)
    return {
        "kinds": kinds,
        "atom_names": [a.name for a in atoms],
        "bonds": [list(b) for b in bonds],
        "r0": [lengths[b] for b in bonds],
        "phi": list(dih["phi"][0]) if dih["phi"] else None,
        "psi": list(dih["psi"][0]) if dih["psi"] else None,
    }
