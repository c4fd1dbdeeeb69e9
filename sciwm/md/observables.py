"""Observables of MD trajectories: backbone dihedrals, basin populations, energies, validity.

Pure NumPy on ``n_frames x n_atoms x 3`` coordinate arrays, so the connector, the data flow
and the benchmark share one definition (:mod:`sciwm.md.torch_ops` has the per-frame ones on
batched torch tensors for the emulator, tested against these). A user adds observables by
import path, ``"package.module:function"``, named in the ``observables`` setting of the
``openmm`` connector: the process that computes the observables (the simulation's worker)
imports them, so they reach it whichever process the campaign runs in (see
:func:`observable_refs` and :func:`compute_observables`).

Basins of alanine dipeptide on the (φ, ψ) map, in degrees (every frame is in exactly one):

* ``alpha_l`` — φ > 0 (left-handed region: C7ax and αL);
* ``alpha_r`` — φ ≤ 0 and -120 < ψ ≤ 30 (right-handed helix region);
* ``beta`` — the rest with φ ≤ 0 (extended region: C7eq, C5, β, PII).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sciwm.errors import ConnectorError

#: Basin boundaries: ``alpha_r`` is ``phi <= 0 and PSI_LO < psi <= PSI_HI``.
ALPHA_R_PSI = (-120.0, 30.0)
BASINS = ("beta", "alpha_r", "alpha_l")
#: Observables that are the time average of a value of each frame's configuration (what an
#: emulator of configurations can estimate); :func:`frame_values` gives the values.
PER_FRAME = ("pop_beta", "pop_alpha_r", "pop_alpha_l", "phi_mean_cos", "psi_mean_cos")

#: A user's observable: ``fn(positions, energy, info) -> float`` with ``positions``
#: ``n_frames x n_atoms x 3`` (nm), ``energy`` ``n_frames`` (kJ/mol) and ``info`` holding
#: ``topology`` (OpenMM) and the backbone ``phi``/``psi`` index lists.
Observable = Callable[[np.ndarray, np.ndarray, dict[str, Any]], float]


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


def frame_values(phi: np.ndarray, psi: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame value of each observable of :data:`PER_FRAME` (its time average is it).

    Args:
        phi: ``n_frames`` backbone φ in degrees.
        psi: ``n_frames`` backbone ψ in degrees.

    Returns:
        Name to an ``n_frames`` float64 array.
    """
    labels = basin_labels(phi, psi)
    out = {f"pop_{name}": (labels == k).astype(np.float64) for k, name in enumerate(BASINS)}
    out["phi_mean_cos"] = np.cos(np.radians(np.asarray(phi, dtype=np.float64)))
    out["psi_mean_cos"] = np.cos(np.radians(np.asarray(psi, dtype=np.float64)))
    return {name: out[name] for name in PER_FRAME}


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


def builtin_names() -> list[str]:
    """Names of the observables every run reports."""
    return [*PER_FRAME, "energy_mean", "energy_std"]


def observable_refs(observables: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Outcome name to import path of each user observable, checked (nothing imported).

    Args:
        observables: Import paths ``"package.module:function"`` (each reported under the
            function's name), or a table of outcome name to import path.

    Returns:
        ``{outcome name: import path}``.

    Raises:
        ConnectorError: If an entry is not an import path, or a name repeats or is built in.
    """
    if observables is None:
        return {}
    if isinstance(observables, str):
        observables = [observables]
    if isinstance(observables, Mapping):
        pairs = [(str(k), v) for k, v in observables.items()]
    elif isinstance(observables, Sequence):
        pairs = [(_name_of(ref), ref) for ref in observables]
    else:
        raise ConnectorError(
            f"observables = {observables!r}: give a list of import paths "
            "('package.module:function') or a table of name = import path"
        )
    out: dict[str, str] = {}
    for name, ref in pairs:
        _check_ref(ref)
        if name in out or name in builtin_names():
            raise ConnectorError(
                f"observable name {name!r} ({ref}) is already taken "
                f"(built in: {builtin_names()}); name it in a table, "
                'observables = {my_name = "package.module:function"}'
            )
        out[name] = ref
    return out


def _check_ref(ref: Any) -> None:
    module, sep, attr = str(ref).partition(":") if isinstance(ref, str) else ("", "", "")
    if not sep or not module.strip() or not attr.strip() or ":" in attr:
        raise ConnectorError(
            f"observable {ref!r} is not an import path; write it as 'package.module:function' "
            "(a module the simulation's worker can import, then a colon and the function)"
        )


def _name_of(ref: Any) -> str:
    _check_ref(ref)
    return str(ref).rpartition(":")[2].rpartition(".")[2].strip()


def load_observable(ref: str) -> Observable:
    """Import one user observable.

    Raises:
        ConnectorError: If the module cannot be imported, lacks the function, or the object
            is not callable (the message names the path).
    """
    from sciwm.registry import load_object

    _check_ref(ref)
    fn = load_object(ref, "observable", ConnectorError)
    if not callable(fn):
        raise ConnectorError(
            f"observable {ref!r} is a {type(fn).__name__}, not a function "
            "fn(positions, energy, info) -> float"
        )
    return fn


def compute_observables(
    positions: np.ndarray,
    energy: np.ndarray,
    topology: Any,
    extra: Mapping[str, str | Observable] | None = None,
) -> dict[str, float]:
    """The built-in observables plus the user's, imported here by their paths.

    Args:
        positions: ``n_frames x n_atoms x 3`` (nm).
        energy: ``n_frames`` potential energies (kJ/mol).
        topology: OpenMM topology (for the backbone dihedrals).
        extra: Outcome name to an import path (see :func:`observable_refs`) or a function.

    Returns:
        Outcome name to value: :func:`builtin_names` (the dihedral ones only when the system
        has a backbone) and one per ``extra`` entry.

    Raises:
        ConnectorError: If a path cannot be imported or an observable does not return a
            finite number.
    """
    from sciwm.md.systems import backbone_dihedral_indices

    idx = backbone_dihedral_indices(topology)
    out: dict[str, float] = {
        "energy_mean": float(np.mean(energy)),
        "energy_std": float(np.std(energy)),
    }
    if idx["phi"] and idx["psi"]:
        phi = dihedral(positions, idx["phi"][0])
        psi = dihedral(positions, idx["psi"][0])
        out.update({k: float(np.mean(v)) for k, v in frame_values(phi, psi).items()})
    info = {"topology": topology, **idx}
    for name, ref in (extra or {}).items():
        fn = load_observable(ref) if isinstance(ref, str) else ref
        value = fn(positions, energy, info)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ConnectorError(
                f"observable {name!r} returned {value!r}; it must return a finite number"
            )
        out[name] = number
    return out
