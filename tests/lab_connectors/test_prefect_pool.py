"""Fast checks of the prefect_pool connector's settings and names (the connector against a
real Prefect server and worker is in tests/integration/prefect_pool/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab_connectors.prefect_pool import PrefectPoolConnector, result_key
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Experiment

FN = "tests.lab_connectors.fixtures_fns:quadratic"


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="unknown setting.*'pool'"):
        PrefectPoolConnector(tmp_path, function=FN, pool="gpu")
    with pytest.raises(ConnectorError, match="work_pool=None.*prefect work-pool ls"):
        PrefectPoolConnector(tmp_path, function=FN)
    with pytest.raises(ConnectorError, match="prefect_pool connector.*'function'"):
        PrefectPoolConnector(tmp_path, work_pool="p")
    with pytest.raises(ConnectorError, match="timeout_s"):
        PrefectPoolConnector(tmp_path, function=FN, work_pool="p", timeout_s=0)
    with pytest.raises(ConnectorError, match="job_variables"):
        PrefectPoolConnector(tmp_path, function=FN, work_pool="p", job_variables="env")


def test_result_key_is_a_valid_artifact_key() -> None:
    key = result_key("00012-AbC_9.x")
    assert key == "sciwm-00012-abc-9-x"


def test_an_api_that_is_down_pauses_instead_of_failing(tmp_path: Path) -> None:
    conn = PrefectPoolConnector(
        tmp_path, function=FN, work_pool="p", api_url="http://127.0.0.1:9/api"
    )
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        conn.submit(Experiment.create("c", 0, {"x": 0.1}))
    assert not (tmp_path / Experiment.create("c", 0, {"x": 0.1}).id / "handle.json").exists()
    conn.close()
