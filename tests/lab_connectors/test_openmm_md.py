"""The OpenMM connector: the conformance suite, real short simulations, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openmm")

from lab_connectors._md_worker import RunConfig, SimulationFailed, simulate  # noqa: E402
from lab_connectors.md_observables import BASINS, builtin_names  # noqa: E402
from lab_connectors.md_systems import SystemSpec, build_system  # noqa: E402
from lab_connectors.openmm_md import OpenMMConnector  # noqa: E402
from sciwm.connector import Connector  # noqa: E402
from sciwm.errors import ConnectorError  # noqa: E402
from sciwm.experiment import Experiment, Status  # noqa: E402
from tests.conformance import ConnectorConformance, wait_finished  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def exp(seq: int = 0, **params: object) -> Experiment:
    return Experiment.create("md-test", seq, {"temperature": 300.0, "length_ps": 2.0, **params})


class TestOpenMMConformance(ConnectorConformance):
    def make_connector(self, workdir: Path) -> Connector:
        return OpenMMConnector(workdir, equilibrate_ps=0.5, timeout_s=60)

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return exp(0, seed=3)

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return exp(1, temperature=5000.0)

    @pytest.fixture
    def failing_message(self) -> str:
        return "outside the physical range"

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return builtin_names()

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return exp(2, length_ps=200_000.0)


def test_short_simulation_is_real_and_consistent() -> None:
    """A few ps of alanine dipeptide: finite energies, bonds near the force field's lengths."""
    out = simulate(SystemSpec(), RunConfig(temperature=300.0, length_ps=4.0, equilibrate_ps=1.0))
    pos = out["positions"]
    assert pos.shape == (4, 22, 3) and np.all(np.isfinite(out["energy"]))
    assert out["n_steps"] == 2000 and out["platform"] == "Reference"
    # C-H bonds are constrained: every one at its amber14 length (0.109 nm) to 1e-4 nm.
    d = np.linalg.norm(pos[:, 0] - pos[:, 1], axis=-1)  # HH31-CH3 of ACE
    np.testing.assert_allclose(d, 0.109, atol=2e-4)
    # Same seed, same trajectory (Reference platform is deterministic).
    again = simulate(SystemSpec(), RunConfig(temperature=300.0, length_ps=4.0, equilibrate_ps=1.0))
    np.testing.assert_allclose(again["positions"], pos, atol=1e-6)


def test_observables_and_trajectory_saved(tmp_path: Path) -> None:
    conn = OpenMMConnector(tmp_path, equilibrate_ps=0.5)
    handle = conn.submit(exp(5, length_ps=3.0, seed=1))
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    obs = conn.fetch(handle)
    pops = [obs.outcomes[f"pop_{b}"] for b in BASINS]
    assert pytest.approx(sum(pops)) == 1.0
    assert obs.cost is not None and obs.cost > 0
    with np.load(obs.metadata["trajectory"]) as traj:
        assert traj["positions"].shape == (3, 22, 3)


def test_blow_up_is_a_failed_observation(tmp_path: Path) -> None:
    """A 20 fs step without constraints blows up: FAILED, with the reason."""
    conn = OpenMMConnector(tmp_path, equilibrate_ps=0.0)
    handle = conn.submit(exp(6, timestep_fs=20.0, length_ps=20.0, temperature=900.0))
    assert wait_finished(conn, handle, 60) is Status.FAILED
    assert "blew up" in (conn.fetch(handle).error or "")


def test_simulate_raises_on_blow_up() -> None:
    with pytest.raises(SimulationFailed, match="blew up"):
        simulate(
            SystemSpec(constraints="none"),
            RunConfig(temperature=900.0, timestep_fs=20.0, length_ps=20.0, equilibrate_ps=0.0),
        )


def test_unparameterisable_pdb_names_the_residue(tmp_path: Path) -> None:
    pdb = tmp_path / "bad.pdb"
    pdb.write_text(
        "ATOM      1  C1  XYZ     1       0.000   0.000   0.000  1.00  0.00           C\n"
        "ATOM      2  C2  XYZ     1       1.500   0.000   0.000  1.00  0.00           C\nEND\n"
    )
    with pytest.raises(ConnectorError, match="XYZ"):
        OpenMMConnector(tmp_path / "w", pdb=str(pdb))
    with pytest.raises(ConnectorError, match="does not exist"):
        build_system(SystemSpec.from_settings({"pdb": str(tmp_path / "none.pdb")}))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"solvent": "water"}, "unknown solvent"),
        ({"platform": "Warp"}, "not available"),
        ({"colour": "red"}, "unknown setting"),
        ({"frame_ps": 0}, "frame_ps"),
    ],
)
def test_bad_settings(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        OpenMMConnector(tmp_path, **settings)


def test_implicit_solvent_builds(tmp_path: Path) -> None:
    conn = OpenMMConnector(tmp_path, solvent="obc2")
    payload = json.loads(conn.env["SCIWM_MD_CONFIG"])
    assert payload["system"]["solvent"] == "obc2"
    _, system, _ = build_system(SystemSpec(solvent="obc2"))
    names = [system.getForce(i).getName() for i in range(system.getNumForces())]
    assert any("GB" in n or "Custom" in n for n in names), names
