"""The Slurm connector passes the conformance suite against a real single-node Slurm."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab_connectors.slurm import SlurmConnector
from sciwm.connector import Connector
from sciwm.experiment import Experiment
from sciwm.testing.connector_suite import ConnectorConformance
from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("slurm_cluster")]

FNS = "tests.lab_connectors.fixtures_fns"


def slurm_connector(workdir: Path, function: str, **settings) -> SlurmConnector:
    """A connector on the test cluster that runs ``FNS:function`` with this interpreter."""
    return SlurmConnector(
        workdir,
        function=f"{FNS}:{function}",
        python=sys.executable,
        env={"PYTHONPATH": str(ROOT)},
        parallelism=2,
        **settings,
    )


class TestSlurmConformance(ConnectorConformance):
    finish_timeout_s = 60.0

    def make_connector(self, workdir: Path) -> Connector:
        return slurm_connector(workdir, "slow_quadratic")

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return Experiment.create("slurm-conf", 0, {"x": 0.5, "delay": 0.2})

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return Experiment.create("slurm-conf", 1, {"x": 0.5, "fail": True})

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return Experiment.create("slurm-conf", 2, {"x": 0.5, "delay": 60.0})

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["y"]

    def times_run(self, connector: Connector, experiment: Experiment) -> int | None:
        runs = connector.config.shared_dir / experiment.id / "runs.txt"  # type: ignore[attr-defined]
        return len(runs.read_text().splitlines()) if runs.exists() else 0
