"""The OpenMM connector: the conformance suite, real short simulations, user observables by
import path, and bad input."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openmm")

from lab_connectors.openmm_md import OpenMMConnector  # noqa: E402
from sciwm.connector import Connector  # noqa: E402
from sciwm.errors import ConnectorError  # noqa: E402
from sciwm.experiment import Experiment, Status  # noqa: E402
from sciwm.md.observables import BASINS, builtin_names, dihedral  # noqa: E402
from sciwm.md.systems import SystemSpec, build_system  # noqa: E402
from sciwm.testing.connector_suite import ConnectorConformance, wait_finished  # noqa: E402

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


USER_OBSERVABLES = """
import numpy as np

from sciwm.md.observables import dihedral


def phi_mean_deg(positions, energy, info):
    return float(np.mean(dihedral(positions, info["phi"][0])))


def frames(positions, energy, info):
    return float(positions.shape[0])
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's observables module on the campaign's path (the workers inherit it)."""
    (tmp_path / "lab_user_md_obs.py").write_text(textwrap.dedent(USER_OBSERVABLES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lab_user_md_obs"
    sys.modules.pop("lab_user_md_obs", None)


def test_user_observables_reach_the_worker(tmp_path: Path, user_module: str) -> None:
    """Observables named by import path are computed in the detached worker and reported."""
    conn = OpenMMConnector(
        tmp_path / "w",
        equilibrate_ps=0.5,
        observables={"phi_deg": f"{user_module}:phi_mean_deg", "n": f"{user_module}:frames"},
    )
    handle = conn.submit(exp(7, length_ps=3.0, seed=2))
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    obs = conn.fetch(handle)
    assert set(obs.outcomes) == {*builtin_names(), "phi_deg", "n"}
    assert obs.outcomes["n"] == 3.0
    with np.load(obs.metadata["trajectory"]) as traj:
        phi = dihedral(traj["positions"], (4, 6, 8, 14))
    assert obs.outcomes["phi_deg"] == pytest.approx(float(np.mean(phi)), abs=1e-3)
    listed = OpenMMConnector(tmp_path / "w2", observables=[f"{user_module}:frames"])
    assert json.loads(listed.env["SCIWM_MD_CONFIG"])["run"]["observables"] == {
        "frames": f"{user_module}:frames"
    }


@pytest.mark.parametrize(
    ("observables", "message"),
    [
        (["no_such_pkg_xyz.obs:f"], "cannot import module 'no_such_pkg_xyz.obs'"),
        (["json:no_such_function"], "has no attribute"),
        (["phi_mean_deg"], "not an import path"),
        ({"pop_beta": "json:dumps"}, "already taken"),
    ],
)
def test_bad_observable_paths_fail_when_built(
    tmp_path: Path, observables: object, message: str
) -> None:
    with pytest.raises(ConnectorError, match=message):
        OpenMMConnector(tmp_path, observables=observables)


def test_blow_up_is_a_failed_observation(tmp_path: Path) -> None:
    """A 20 fs step without constraints blows up: FAILED, with the reason."""
    conn = OpenMMConnector(tmp_path, equilibrate_ps=0.0)
    handle = conn.submit(exp(6, timestep_fs=20.0, length_ps=20.0, temperature=900.0))
    assert wait_finished(conn, handle, 60) is Status.FAILED
    assert "blew up" in (conn.fetch(handle).error or "")


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


def test_partial_results_while_running(tmp_path: Path) -> None:
    conn = OpenMMConnector(tmp_path, equilibrate_ps=0.5, partial_every_ps=1.0)
    handle = conn.submit(exp(6, length_ps=3.0, seed=2))
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    points = conn.partial(handle)
    assert [p["fidelity"] for p in points] == [{"length_ps": 1.0}, {"length_ps": 2.0}]
    assert points[0]["cost"] < points[1]["cost"] <= conn.fetch(handle).cost
    for p in points:
        pops = [p["outcomes"][f"pop_{b}"] for b in BASINS]
        assert pytest.approx(sum(pops)) == 1.0
        assert set(p["outcomes"]) == set(builtin_names())


def test_partial_results_default_and_off(tmp_path: Path) -> None:
    conn = OpenMMConnector(tmp_path / "default", equilibrate_ps=0.5)
    handle = conn.submit(exp(7, length_ps=10.0, seed=2))
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    assert [p["fidelity"]["length_ps"] for p in conn.partial(handle)] == [
        float(k) for k in range(1, 10)
    ]
    off = OpenMMConnector(tmp_path / "off", equilibrate_ps=0.5, partial_every_ps=0)
    handle = off.submit(exp(8, length_ps=3.0, seed=2))
    assert wait_finished(off, handle, 60) is Status.COMPLETED
    assert off.partial(handle) == []
    with pytest.raises(ConnectorError, match="partial_every_ps"):
        OpenMMConnector(tmp_path / "bad", partial_every_ps=-1.0)
