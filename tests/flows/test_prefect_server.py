"""With PREFECT_API_URL set, the campaign flow runs against that Prefect server.

The test starts a real ``prefect server`` on a loopback port, runs ``sciwm campaign run`` in a
subprocess pointed at it, and reads the flow run back from the server's API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.flows.conftest import ROOT, write_campaign

pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


@pytest.fixture
def prefect_server(tmp_path: Path):
    port = _free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="true",
    )
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            _get(f"{api}/health")
            break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("prefect server did not become healthy within 90 s")
    yield api
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_flow_runs_against_the_server_in_prefect_api_url(
    prefect_server: str, tmp_path: Path
) -> None:
    spec = write_campaign(tmp_path, "server-camp", max_experiments=3, initial=3)
    env = dict(os.environ, PREFECT_API_URL=prefect_server, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_HOME", None)
    out = subprocess.run(
        [sys.executable, "-m", "sciwm.cli", "campaign", "run", spec.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    runs = _get(f"{prefect_server}/flow_runs/filter", {})
    assert isinstance(runs, list) and runs
    states = [r["state"]["type"] for r in runs]
    assert "COMPLETED" in states
    tasks = _get(f"{prefect_server}/task_runs/filter", {})
    names = [t["name"] for t in tasks]  # type: ignore[union-attr]
    assert sum(n.startswith("propose-gate-dispatch") for n in names) >= 2
