"""A campaign whose experiments run on a Prefect work pool's worker; crash windows; check()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sciwm.experiment import Experiment, Status
from sciwm.store import RecordStore, default_tracking_uri
from sciwm.testing.connector_suite import wait_finished
from tests.flows.conftest import write_campaign
from tests.integration.conftest import POOL, ROOT
from tests.integration.prefect_pool.test_prefect_pool_conformance import pool_connector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_a_crash_after_creating_the_run_creates_no_second_run(prefect_worker, tmp_path) -> None:  # noqa: ANN001
    api = prefect_worker.server.api_url
    conn = pool_connector(tmp_path, api, "quadratic")
    exp = Experiment.create("pool-crash", 0, {"x": 0.25})
    handle = conn.submit(exp)
    (Path(handle["dir"]) / "handle.json").unlink()  # died before the handle was written
    assert pool_connector(tmp_path, api, "quadratic").submit(exp) == handle
    assert wait_finished(conn, handle, 120) is Status.COMPLETED
    runs = prefect_worker.server.request(
        "/flow_runs/filter", {"flow_runs": {"name": {"any_": [f"sciwm-{exp.id}"]}}}
    )
    assert len(runs) == 1  # type: ignore[arg-type]
    obs = conn.fetch(handle)
    assert obs.outcomes["y"] == pytest.approx(-((0.25 - 0.3) ** 2))
    assert obs.metadata["prefect_flow_run_id"] == handle["flow_run_id"]
    assert obs.metadata["worker_host"]


def test_check_sees_the_pool_and_its_worker(prefect_worker, tmp_path) -> None:  # noqa: ANN001
    api = prefect_worker.server.api_url
    found = {f.aspect: f for f in pool_connector(tmp_path, api).check()}
    assert all(f.ok for f in found.values()), found
    assert "1 worker(s) online" in found["workers"].message
    missing = pool_connector(tmp_path, api, work_pool="no-such-pool").check()
    assert [f.ok for f in missing] == [True, False]
    assert "does not exist" in missing[1].message
    down = pool_connector(tmp_path, "http://127.0.0.1:9/api").check()
    assert len(down) == 1 and not down[0].ok and down[0].aspect == "reachable"


def test_campaign_on_the_work_pool(prefect_worker, tmp_path) -> None:  # noqa: ANN001
    name, n = "pool-campaign", 4
    spec = write_campaign(tmp_path, name, acquisition="random", initial=n, max_experiments=n)
    text = spec.read_text()
    local = text[text.index("[connector]") : text.index("[scheduler]")]
    spec.write_text(
        text.replace(
            local,
            '[connector]\ntype = "prefect_pool"\n\n[connector.settings]\n'
            f'function = "tests.flows.fns:bowl"\nwork_pool = "{POOL}"\n'
            f'api_url = "{prefect_worker.server.api_url}"\ntimeout_s = 60\n\n',
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(
        [sys.executable, "-m", "sciwm.cli", "campaign", "run", spec.name, "--no-prefect"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    records = RecordStore(default_tracking_uri(tmp_path)).records(name)
    assert len(records) == len({r.experiment.id for r in records}) == n
    assert all(r.status is Status.COMPLETED for r in records), [r.observation for r in records]
    assert all(r.observation.metadata["prefect_state"] == "COMPLETED" for r in records)
    assert len({r.handle["flow_run_id"] for r in records}) == n
