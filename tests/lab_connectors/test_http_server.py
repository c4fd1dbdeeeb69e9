"""The reference lab server: the protocol as documented, idempotence, queue, restarts, start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from lab_connectors.http_lab import HTTPLabConnector
from lab_connectors.http_protocol import PROTOCOL
from lab_connectors.http_server import LabBackend, openapi_document
from lab_connectors.http_server.serve import add_arguments, build_backend
from lab_connectors.local import LocalConnector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import wait_finished
from tests.lab_connectors.http_lab_fixtures import FNS, TOKEN, running_lab

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "http_lab_openapi.json"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def body(i: int = 0, **params: object) -> dict[str, object]:
    e = Experiment.create("srv-test", i, {"x": 0.1 * i, "delay": 0.0, **params})
    return {**e.to_dict(), "max_cost": 10.0}


def test_the_committed_openapi_file_is_the_servers() -> None:
    committed = json.loads(OPENAPI.read_text())
    assert committed == openapi_document(), (
        "docs/http_lab_openapi.json is stale; regenerate it with "
        "`python -m lab_connectors.http_server --openapi > docs/http_lab_openapi.json`"
    )
    paths = committed["paths"]
    assert set(paths) == {
        "/v1/health",
        "/v1/capacity",
        "/v1/experiments",
        "/v1/experiments/{experiment_id}",
        "/v1/experiments/{experiment_id}/result",
        "/v1/experiments/{experiment_id}/cancel",
    }
    assert committed["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_protocol_over_plain_http(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab") as lab, httpx.Client(base_url=lab.url) as c:
        health = c.get("/v1/health")  # no token needed
        assert health.status_code == 200 and health.json()["protocol"] == PROTOCOL
        assert c.get("/v1/capacity").status_code == 401
        assert c.get("/v1/capacity", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/v1/capacity").headers["WWW-Authenticate"] == "Bearer"
        first = c.post("/v1/experiments", json=body(1), headers=AUTH)
        assert first.status_code == 201 and first.json()["status"] in ("queued", "running")
        again = c.post("/v1/experiments", json=body(1), headers=AUTH)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        exp_id = first.json()["id"]
        deadline = time.monotonic() + 20
        while c.get(f"/v1/experiments/{exp_id}", headers=AUTH).json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        result = c.get(f"/v1/experiments/{exp_id}/result", headers=AUTH).json()
        assert result["status"] == "completed" and result["outcomes"]["y"] == pytest.approx(-0.04)
        assert c.post(f"/v1/experiments/{exp_id}/cancel", headers=AUTH).json()["status"] == (
            "completed"
        )
        assert lab.runs(exp_id) == 1
        assert c.get("/v1/experiments/nope-1", headers=AUTH).status_code == 404
        assert c.get("/v1/experiments/bad%20id", headers=AUTH).status_code == 422
        bad = c.post("/v1/experiments", json={"id": "x-1", "parameters": {}}, headers=AUTH)
        assert bad.status_code == 422 and any("campaign" in e["loc"] for e in bad.json()["detail"])


def test_result_of_a_running_experiment_is_409_and_cancel_stops_it(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", parallelism=1) as lab, httpx.Client(base_url=lab.url) as c:
        c.post("/v1/experiments", json=body(0, delay=20.0), headers=AUTH)
        queued = c.post("/v1/experiments", json=body(1), headers=AUTH).json()
        assert queued["status"] == "queued"
        running = body(0, delay=20.0)["id"]
        assert c.get(f"/v1/experiments/{running}/result", headers=AUTH).status_code == 409
        for exp_id in (running, queued["id"]):
            assert c.post(f"/v1/experiments/{exp_id}/cancel", headers=AUTH).status_code == 200
        assert c.get(f"/v1/experiments/{queued['id']}", headers=AUTH).json()["status"] == (
            "cancelled"
        )
        for exp_id in (running, queued["id"]):
            result = c.get(f"/v1/experiments/{exp_id}/result", headers=AUTH).json()
            assert result["status"] == "cancelled"
        assert lab.runs(queued["id"]) == 0  # a cancelled queued experiment never starts


def test_a_restarted_lab_knows_every_experiment_and_runs_none_twice(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    with running_lab(state, parallelism=1) as lab, httpx.Client(base_url=lab.url) as c:
        ids = [c.post("/v1/experiments", json=body(i), headers=AUTH).json()["id"] for i in range(3)]
    # the lab went down with one experiment started and two queued; it comes back
    with running_lab(state, parallelism=2) as lab, httpx.Client(base_url=lab.url) as c:
        assert all(
            c.post("/v1/experiments", json=body(i), headers=AUTH).status_code == 200
            for i in range(3)
        )
        deadline = time.monotonic() + 30
        while any(
            c.get(f"/v1/experiments/{i}", headers=AUTH).json()["status"] != "completed" for i in ids
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [lab.runs(i) for i in ids] == [1, 1, 1]


def test_a_replayed_data_set_behind_the_api(tmp_path: Path) -> None:
    csv = tmp_path / "runs.csv"
    rows = [("toy", "SVC_rbf", 64, 0.77, 0.10), ("toy", "SVC_rbf", 128, 0.90, 2.0)]
    pd.DataFrame(rows, columns=["dataset", "learner", "anchor", "score", "train_time"]).to_csv(
        csv, index=False
    )
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        ["--replay", str(csv), "--set", "dataset=toy", "--state-dir", str(tmp_path / "s")]
    )
    backend = build_backend(args)
    from lab_connectors.http_server import LabServer, create_app

    backend.start()
    try:
        with LabServer(create_app(backend)) as server:
            conn = HTTPLabConnector(tmp_path / "c", url=server.url)
            e = Experiment.create("replay", 0, {"learner": "SVC_rbf", "anchor": 128})
            handle = conn.submit(e)
            assert wait_finished(conn, handle) is Status.COMPLETED
            obs = conn.fetch(handle)
            assert obs.outcomes == {"accuracy": 0.90} and obs.cost == 2.0
            missing = conn.submit(Experiment.create("replay", 1, {"learner": "X", "anchor": 1}))
            wait_finished(conn, missing)
            assert "no recorded run of learner 'X'" in (conn.fetch(missing).error or "")
    finally:
        backend.stop()


def test_backend_parallelism_must_be_positive(tmp_path: Path) -> None:
    conn = LocalConnector(tmp_path / "b", function=f"{FNS}:quadratic")
    with pytest.raises(ConnectorError, match="parallelism must be >= 1"):
        LabBackend(conn, tmp_path, parallelism=0)


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab_connectors.http_server", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_start_command_serves_a_callable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _serve(
        "--callable", f"{FNS}:quadratic", "--port", str(port), "--state-dir", str(tmp_path),
        "--token-env", "LAB_T", env={"LAB_T": TOKEN},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the lab server did not start"
            time.sleep(0.1)
        os.environ["LAB_T"] = TOKEN
        try:
            conn = HTTPLabConnector(tmp_path / "c", url=url, token_env="LAB_T")
            handle = conn.submit(Experiment.create("cli", 0, {"x": 0.3}))
            assert wait_finished(conn, handle) is Status.COMPLETED
            assert conn.fetch(handle).outcomes == {"y": 0.0}
        finally:
            del os.environ["LAB_T"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "bearer token required" in err and TOKEN not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--callable", f"{FNS}:quadratic", "--host", "0.0.0.0"], "without a token"),
        (["--callable", f"{FNS}:quadratic", "--token-env", "UNSET_VAR_X"], "is not set"),
        ([], "say what the lab runs"),
        (["--callable", f"{FNS}:quadratic", "--tls-cert", "c.pem"], "both --tls-cert"),
    ],
)
def test_the_start_command_refuses_unsafe_or_incomplete_options(
    args: list[str], message: str
) -> None:
    proc = _serve(*args)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and message in err
