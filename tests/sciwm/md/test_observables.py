"""The NumPy observables against hand-computed cases, and users' observables by import path."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sciwm.errors import ConnectorError
from sciwm.md import observables as mo


def four_points(theta_deg: float) -> np.ndarray:
    """a, b, c, d with b-c along y and the dihedral a-b-c-d equal to ``theta``."""
    t = math.radians(theta_deg)
    return np.array(
        [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [math.cos(t), 1.0, -math.sin(t)]]
    )


@pytest.mark.parametrize("theta", [0.0, 60.0, -60.0, 120.0, -179.0, 180.0, 90.0])
def test_dihedral_hand_cases(theta: float) -> None:
    # With b->c along +y and a along +x, d rotated by theta about +y (right-handed, IUPAC sign).
    got = float(mo.dihedral(four_points(theta), (0, 1, 2, 3)))
    assert math.isclose(abs(got), abs(theta), abs_tol=1e-6)
    if 0 < abs(theta) < 180:
        assert math.copysign(1, got) == math.copysign(1, theta)


def test_jsd_closed_forms() -> None:
    p = np.array([1.0, 0.0])
    q = np.array([0.5, 0.5])
    expected = 0.5 * math.log(1 / 0.75) + 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    assert math.isclose(mo.jsd(p, q), expected, rel_tol=1e-12)
    assert math.isclose(mo.jsd(p, q), mo.jsd(q, p), rel_tol=1e-12)
    assert mo.jsd(q, q) == 0.0
    assert math.isclose(mo.jsd([1, 0], [0, 1]), math.log(2), rel_tol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        mo.jsd([1, 0], [1, 0, 0])


def test_histograms_basins_and_frame_values() -> None:
    phi = np.array([-80.0, -70.0, -60.0, 60.0])
    psi = np.array([70.0, -40.0, 150.0, 40.0])
    assert mo.basin_labels(phi, psi).tolist() == [0, 1, 0, 2]
    pops = mo.basin_populations(phi, psi)
    assert pops == {"beta": 0.5, "alpha_r": 0.25, "alpha_l": 0.25}
    h = mo.histogram(np.array([-179.0, 179.0, 0.5]), bins=4)
    assert h.tolist() == [1 / 3, 0.0, 1 / 3, 1 / 3]
    assert mo.histogram2d(phi, psi, bins=2).sum() == pytest.approx(1.0)
    values = mo.frame_values(phi, psi)
    assert list(values) == list(mo.PER_FRAME)
    for name in mo.BASINS:
        assert float(values[f"pop_{name}"].mean()) == pops[name]
    np.testing.assert_allclose(values["phi_mean_cos"], np.cos(np.radians(phi)))
    # the alpha_r boundaries: psi in (-120, 30]
    assert mo.basin_labels(np.array([-60.0] * 3), np.array([-120.0, 30.0, 30.1])).tolist() == [
        0,
        1,
        0,
    ]


def test_bond_valid() -> None:
    x = np.array([[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.115, 0.0, 0.0]]])
    assert mo.bond_valid(x, np.array([[0, 1]]), np.array([0.1])).tolist() == [True, False]


def test_observable_refs_names_and_errors() -> None:
    assert mo.observable_refs(None) == {}
    assert mo.observable_refs(["pkg.mod:end_to_end"]) == {"end_to_end": "pkg.mod:end_to_end"}
    assert mo.observable_refs({"e2e": "pkg.mod:Obs.e2e"}) == {"e2e": "pkg.mod:Obs.e2e"}
    with pytest.raises(ConnectorError, match="not an import path"):
        mo.observable_refs(["end_to_end"])
    with pytest.raises(ConnectorError, match="already taken"):
        mo.observable_refs(["a.b:f", "c.d:f"])
    with pytest.raises(ConnectorError, match="already taken"):
        mo.observable_refs({"pop_beta": "a.b:f"})


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module ``user_obs_numpy`` with one good and two bad observables."""
    (tmp_path / "user_obs_numpy.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def mean_x(positions, energy, info):
                return float(np.mean(positions[..., 0]))

            def broken(positions, energy, info):
                return "high"

            not_a_function = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_obs_numpy"
    sys.modules.pop("user_obs_numpy", None)


def test_compute_observables_imports_user_observables(alanine, frames, user_module) -> None:
    """Built-ins equal their definitions; a user's observable is imported by its path."""
    molecule, _ = alanine
    from sciwm.md.systems import SystemSpec, build_system

    topology, _, _ = build_system(SystemSpec())
    energy = np.linspace(-10.0, 10.0, len(frames))
    refs = mo.observable_refs([f"{user_module}:mean_x"])
    out = mo.compute_observables(frames, energy, topology, refs)
    assert set(out) == {*mo.builtin_names(), "mean_x"}
    assert out["mean_x"] == pytest.approx(float(frames[..., 0].mean()))
    phi, psi = mo.dihedral(frames, molecule.phi), mo.dihedral(frames, molecule.psi)
    pops = mo.basin_populations(phi, psi)
    for name in mo.BASINS:
        assert out[f"pop_{name}"] == pytest.approx(pops[name])
    assert out["energy_std"] == pytest.approx(float(np.std(energy)))
    with pytest.raises(ConnectorError, match="finite number"):
        mo.compute_observables(frames, energy, topology, {"b": f"{user_module}:broken"})
    with pytest.raises(ConnectorError, match="not a function"):
        mo.load_observable(f"{user_module}:not_a_function")
    with pytest.raises(ConnectorError, match="has no attribute"):
        mo.load_observable(f"{user_module}:missing")
    with pytest.raises(ConnectorError, match="cannot import module"):
        mo.load_observable("no_such_module_xyz:f")
