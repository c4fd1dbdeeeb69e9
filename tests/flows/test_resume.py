"""A campaign killed with SIGKILL mid-way resumes: nothing runs twice, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sciwm.experiment import Status
from sciwm.store import RecordStore, default_tracking_uri
from tests.flows.conftest import ROOT, write_campaign

pytestmark = pytest.mark.timeout(300)


def _cli(folder: Path, *args: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, SCIWM_TEST_CALL_LOG=str(log), PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sciwm.cli", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigkill_then_resume(tmp_path: Path) -> None:
    name = "resume-kill"
    spec = write_campaign(tmp_path, name, acquisition="random", initial=10, max_experiments=10)
    calls = tmp_path / "calls.log"
    uri = default_tracking_uri(tmp_path)

    proc = _cli(tmp_path, "campaign", "run", spec.name, "--no-prefect", log=calls)
    # wait until some experiments finished and others are running, then kill -9
    deadline = time.time() + 120
    store = None
    while time.time() < deadline:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"campaign ended before it could be killed:\n{proc.stdout.read()}")
        if not (tmp_path / "mlflow.db").exists():
            continue
        try:
            store = store or RecordStore(uri)
            recs = store.records(name)
        except Exception:  # noqa: BLE001 - the campaign may still be creating the store
            continue
        done = sum(r.status.finished for r in recs)
        running = sum(r.status is Status.RUNNING for r in recs)
        if done >= 2 and running >= 1:
            break
    else:
        proc.kill()
        pytest.fail("the campaign never reached a state worth killing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r.experiment.id: r for r in RecordStore(uri).records(name)}
    finished_before = {i for i, r in before.items() if r.status.finished}

    proc = _cli(tmp_path, "campaign", "run", spec.name, "--no-prefect", log=calls)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out

    after = RecordStore(uri).records(name)
    ids = [r.experiment.id for r in after]
    assert len(ids) == len(set(ids)) == 10, "every experiment recorded exactly once"
    assert set(before) <= set(ids), "nothing recorded before the kill was lost"
    assert all(r.status is Status.COMPLETED for r in after)
    for r in after:
        if r.experiment.id in finished_before:  # a finished result is kept as it was
            assert r.observation == before[r.experiment.id].observation

    # each real experiment ran exactly once: one call per experiment, no repeats
    lines = calls.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 10

    # and the MLflow store holds exactly one run per experiment
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], "tags.`sciwm.kind` = 'experiment'")
    assert sorted(r.data.tags["sciwm.experiment_id"] for r in runs) == sorted(ids)
