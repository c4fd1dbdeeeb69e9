"""The fixed chemistry of a simulated system as plain tuples: what the emulator is built on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Molecule:
    """The fixed chemistry of a system.

    Attributes:
        kinds: Atom kind per atom (an index into :data:`sciwm.md.systems.KINDS`).
        bonds: ``(i, j)`` atom pairs, ``i < j``.
        r0: Force-field length of each bond, nm.
        phi: Atom indices of the (first) backbone φ dihedral.
        psi: Atom indices of the (first) backbone ψ dihedral.
    """

    kinds: tuple[int, ...]
    bonds: tuple[tuple[int, int], ...]
    r0: tuple[float, ...]
    phi: tuple[int, int, int, int]
    psi: tuple[int, int, int, int]

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.kinds)

    @classmethod
    def from_meta(cls, system: Mapping[str, Any]) -> Molecule:
        """Build from :func:`sciwm.md.systems.system_meta` (the ``system`` block of a data set).

        Raises:
            ValueError: If the system has no backbone φ/ψ dihedral.
        """
        if system.get("phi") is None or system.get("psi") is None:
            raise ValueError("the system has no backbone phi/psi dihedral to describe it by")
        phi, psi = (int(i) for i in system["phi"]), (int(i) for i in system["psi"])
        return cls(
            kinds=tuple(int(k) for k in system["kinds"]),
            bonds=tuple((int(i), int(j)) for i, j in system["bonds"]),
            r0=tuple(float(r) for r in system["r0"]),
            phi=tuple(phi),  # type: ignore[arg-type]
            psi=tuple(psi),  # type: ignore[arg-type]
        )


__all__ = ["Molecule"]
