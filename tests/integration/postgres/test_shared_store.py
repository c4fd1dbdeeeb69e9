"""A shared record store: campaigns on one MLflow server backed by a real PostgreSQL.

Several ``sciwm campaign run`` processes write to the store at once, one is killed with
SIGKILL and resumed, and the ``postgresql://`` URI also works directly, without a server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sciwm.errors import StoreError
from sciwm.experiment import Status
from sciwm.store import RecordStore
from tests.flows.conftest import write_campaign
from tests.integration.conftest import ROOT
from tests.integration.services.postgres import PASSWORD, MlflowServer, PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def cli(folder: Path, spec: Path, uri: str, calls: Path) -> subprocess.Popen:
    env = dict(os.environ, SCIWM_TEST_CALL_LOG=str(calls), PYTHONPATH=str(ROOT))
    env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.Popen(
        [sys.executable, "-m", "sciwm.cli", "campaign", "run", spec.name, "--no-prefect"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def check_campaign(uri: str, name: str, n: int, calls: Path) -> None:
    """Every experiment recorded once, completed, run once; one MLflow run each."""
    records = RecordStore(uri).records(name)
    ids = [r.experiment.id for r in records]
    assert len(ids) == len(set(ids)) == n, f"{name}: {len(ids)} records, {len(set(ids))} ids"
    assert all(r.status is Status.COMPLETED for r in records), name
    lines = calls.read_text().splitlines()
    assert len(lines) == len(set(lines)) == n, f"{name}: {len(lines)} runs of {n} experiments"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], "tags.`sciwm.kind` = 'experiment'")
    assert sorted(r.data.tags["sciwm.experiment_id"] for r in runs) == sorted(ids)


def run_at_once(tmp_path: Path, uri: str, names: list[str], n: int) -> float:
    """Run one campaign process per name at the same time; returns the wall time."""
    procs = {}
    start = time.monotonic()
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        spec = write_campaign(folder, name, acquisition="random", initial=n, max_experiments=n)
        procs[name] = cli(folder, spec, uri, folder / "calls.log")
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, f"{name}:\n{out}"
        assert "View run" not in out  # MLflow's per-run links stay out of the campaign's output
    wall = time.monotonic() - start
    for name in names:
        check_campaign(uri, name, n, tmp_path / name / "calls.log")
    return wall


def test_four_campaigns_write_to_one_mlflow_server_at_once(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    names = [f"team-{i}" for i in range(4)]
    run_at_once(tmp_path, mlflow_server.url, names, 6)
    assert set(names) <= set(RecordStore(mlflow_server.url).campaigns())


def test_two_campaigns_on_a_fresh_postgresql_database_directly(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    uri = postgres.create_database("fresh_direct")  # both processes create its tables at once
    run_at_once(tmp_path, uri, ["direct-a", "direct-b"], 4)


def test_sigkill_then_resume_on_the_mlflow_server(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    name, n = "team-resume", 8
    spec = write_campaign(tmp_path, name, acquisition="random", initial=n, max_experiments=n)
    calls = tmp_path / "calls.log"
    uri = mlflow_server.url
    proc = cli(tmp_path, spec, uri, calls)
    deadline, store = time.time() + 240, None
    while time.time() < deadline:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"campaign ended before it could be killed:\n{proc.stdout.read()}")
        try:
            store = store or RecordStore(uri)
            recs = store.records(name)
        except StoreError:  # the campaign may not have opened yet
            continue
        if sum(r.status.finished for r in recs) >= 2 and any(
            r.status is Status.RUNNING for r in recs
        ):
            break
    else:
        proc.kill()
        pytest.fail("the campaign never reached a state worth killing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r.experiment.id: r for r in RecordStore(uri).records(name)}
    proc = cli(tmp_path, spec, uri, calls)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    check_campaign(uri, name, n, calls)
    after = {r.experiment.id: r for r in RecordStore(uri).records(name)}
    for exp_id, rec in before.items():
        if rec.status.finished:
            assert after[exp_id].observation == rec.observation


def test_a_refused_connection_names_the_database_but_not_the_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.uri("mlflow_server").replace(PASSWORD, "not-the-password")
    with pytest.raises(StoreError) as info:
        RecordStore(wrong)
    text = str(info.value)
    assert "password authentication failed" in text
    assert f"127.0.0.1:{postgres.port}/mlflow_server" in text
    assert "not-the-password" not in text
