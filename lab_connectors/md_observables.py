"""Observables of MD trajectories: backbone dihedrals, basin populations, energies, validity.

Pure NumPy on ``n_frames x n_atoms x 3`` coordinate arrays, so the connector, the data flow
and the benchmark share one definition. Users add their own observables with
:func:`register_observable`.

Basins of alanine dipeptide on the (φ, ψ) map, in degrees (every frame is in exactly one):

* ``alpha_l`` — φ > 0 (left-handed region: C7ax and αL);
* ``alpha_r`` — φ ≤ 0 and -120 < ψ ≤ 30 (right-handed helix region);
* ``beta`` — the rest with φ ≤ 0 (extended region: C7eq, C5, β, PII).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sciwm.errors import ConnectorError

#: Basin boundaries: ``alpha_r`` is ``phi <= 0 and PSI_LO < psi <= PSI_HI``.
ALPHA_R_PSI = (-120.0, 30.0)
BASINS = ("beta", "alpha_r", "alpha_l")

Observable = Callable[[np.ndarray, np.ndarray, dict[str, Any]], float]
_REGISTRY: dict[str, Observable] = {}


def dihedral(positions: np.ndarray, idx: Sequence[int]) -> np.ndarray:
    """Dihedral angle of four atoms in every frame.

    Args:
        positions: A ``n_frames x n_atoms x 3`` array (or ``n_atoms x 3``).
        idx: Four atom indices ``(a, b, c, d)``.

    Returns:
        Angles in degrees in (-180, 180], shape ``n_frames`` (or a scalar array).
    """
    p = np.asarray(positions, dtype=np.float64)
    a, b, c, d = (p[..., i, :] for i in idx)
    b0, b1, b2 = a - b, c - b, d - c
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    x = np.sum(v * w, axis=-1)
    y = np.sum(np.cross(b1n, v) * w, axis=-1)
    return np.degrees(np.arctan2(y, x))


def basin_labels(phi: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """Basin index per frame (0 ``beta``, 1 ``alpha_r``, 2 ``alpha_l``; see module doc)."""
    phi, psi = np.asarray(phi), np.asarray(psi)
    lo, hi = ALPHA_R_PSI
    labels = np.zeros(phi.shape, dtype=np.int64)
    labels[(phi <= 0) & (psi > lo) & (psi <= hi)] = 1
    labels[phi > 0] = 2
    return labels


def basin_populations(phi: np.ndarray, psi: np.ndarray) -> dict[str, float]:
    """Fraction of frames in each basin (they sum to one)."""
    labels = basin_labels(phi, psi)
    n = max(1, labels.size)
    return {name: float(np.sum(labels == k)) / n for k, name in enumerate(BASINS)}


def histogram(angles: np.ndarray, bins: int = 50) -> np.ndarray:
    """Normalised histogram of angles in degrees over [-180, 180] (``bins`` entries)."""
    h, _ = np.histogram(np.asarray(angles).ravel(), bins=bins, range=(-180.0, 180.0))
    return h / max(1, h.sum())


def histogram2d(phi: np.ndarray, psi: np.ndarray, bins: int = 25) -> np.ndarray:
    """Normalised 2-D (φ, ψ) histogram, ``bins x bins``."""
    h, _, _ = np.histogram2d(
        np.ravel(phi), np.ravel(psi), bins=bins, range=[[-180.0, 180.0], [-180.0, 180.0]]
    )
    return h / max(1.0, h.sum())


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence of two histograms, in nats (0 … ln 2).

    Args:
        p: Non-negative weights of any shape (normalised here).
        q: Same shape as ``p``.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def bond_valid(
    positions: np.ndarray, bonds: np.ndarray, r0: np.ndarray, tol: float = 0.10
) -> np.ndarray:
    """Whether every bond of each frame is within ``tol`` (relative) of its reference length.

    Args:
        positions: ``n_frames x n_atoms x 3`` (nm).
        bonds: ``n_bonds x 2`` atom indices.
        r0: ``n_bonds`` reference lengths (nm), from the force field.

    Returns:
        Boolean array of shape ``n_frames``.
    """
    p = np.asarray(positions, dtype=np.float64)
    d = np.linalg.norm(p[..., bonds[:, 0], :] - p[..., bonds[:, 1], :], axis=-1)
    return np.all(np.abs(d - r0) <= tol * r0, axis=-1)


def register_observable(name: str, fn: Observable) -> None:
    """Add an observable ``fn(positions, energy, info) -> float`` under ``name``.

    ``info`` holds ``phi``/``psi`` index lists and ``topology``.
    """
    if name in _REGISTRY or name in builtin_names():
        raise ConnectorError(f"an observable named {name!r} already exists; pick another name")
    _REGISTRY[name] = fn


def builtin_names() -> list[str]:
    """Names of the observables every run reports."""
    return [
        "phi_mean_cos",
        "psi_mean_cos",
        *(f"pop_{b}" for b in BASINS),
        "energy_mean",
        "energy_std",
    ]


def compute_observables(
    positions: np.ndarray,
    energy: np.ndarray,
    topology: Any,
    extra: Sequence[str] | None = None,
) -> dict[str, float]:
    """The built-in observables plus any registered ones named in ``extra``.

    Args:
        positions: ``n_frames x n_atoms x 3`` (nm).
        energy: ``n_frames`` potential energies (kJ/mol).
        topology: OpenMM topology (for the backbone dihedrals).
        extra: Names of registered observables to add.

    Raises:
        ConnectorError: If ``extra`` names an observable nobody registered.
    """
    from lab_connectors.md_systems import backbone_dihedral_indices

    idx = backbone_dihedral_indices(topology)
    out: dict[str, float] = {
        "energy_mean": float(np.mean(energy)),
        "energy_std": float(np.std(energy)),
    }
    if idx["phi"] and idx["psi"]:
        phi = dihedral(positions, idx["phi"][0])
        psi = dihedral(positions, idx["psi"][0])
        out["phi_mean_cos"] = float(np.mean(np.cos(np.radians(phi))))
        out["psi_mean_cos"] = float(np.mean(np.cos(np.radians(psi))))
        out.update({f"pop_{k}": v for k, v in basin_populations(phi, psi).items()})
    info = {"topology": topology, **idx}
    for name in extra or ():
        if name not in _REGISTRY:
            raise ConnectorError(
                f"unknown observable {name!r}; register it with "
                "lab_connectors.md_observables.register_observable first"
            )
        out[name] = float(_REGISTRY[name](positions, energy, info))
    return out
