"""The prefect_pool connector passes the conformance suite against a real Prefect server and
a process worker on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab_connectors.prefect_pool import PrefectPoolConnector
from sciwm.connector import Connector
from sciwm.experiment import Experiment
from sciwm.testing.connector_suite import ConnectorConformance
from tests.integration.conftest import POOL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FNS = "tests.lab_connectors.fixtures_fns"


@pytest.fixture(autouse=True)
def _worker(prefect_worker) -> None:  # noqa: ANN001 - the session's worker, started once
    """Every test here needs the server and its worker."""


def pool_connector(workdir: Path, api_url: str, function: str = "slow_quadratic", **kw):
    settings = {"work_pool": POOL, "parallelism": 2, **kw}
    return PrefectPoolConnector(workdir, function=f"{FNS}:{function}", api_url=api_url, **settings)


class TestPrefectPoolConformance(ConnectorConformance):
    finish_timeout_s = 120.0

    @pytest.fixture(autouse=True)
    def _api(self, prefect_server) -> None:  # noqa: ANN001
        self.api_url = prefect_server.api_url

    def make_connector(self, workdir: Path) -> Connector:
        return pool_connector(workdir, self.api_url)

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return Experiment.create("pool-conf", 0, {"x": 0.5, "delay": 0.2})

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return Experiment.create("pool-conf", 1, {"x": 0.5, "fail": True})

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return Experiment.create("pool-conf", 2, {"x": 0.5, "delay": 120.0})

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["y"]
