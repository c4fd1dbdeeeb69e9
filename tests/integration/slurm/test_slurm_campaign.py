"""`sciwm campaign run` with `[connector] type = "slurm"`: a real campaign on a real Slurm,
killed with SIGKILL mid-way and resumed, without an experiment lost or run twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sciwm.experiment import Status
from sciwm.store import RecordStore, default_tracking_uri
from tests.integration.conftest import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("slurm_cluster"),
    pytest.mark.timeout(600),
]

CAMPAIGN = """
[campaign]
name = "{name}"
seed = 3

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "y"
type = "float"
low = 0.0
high = 1.0

[[objectives]]
name = "f"
direction = "maximize"

[budget]
total = 200
unit = "s"

[connector]
type = "slurm"

[connector.settings]
function = "tests.flows.fns:bowl"
python = "{python}"
env = {{ PYTHONPATH = "{root}" }}
time_limit_min = 5

[scheduler]
acquisition = "random"
batch_size = 2
parallelism = 2
initial_experiments = {n}
poll_interval_s = 0.2

[stopping]
max_experiments = {n}
"""


def write_campaign(folder: Path, name: str, n: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(CAMPAIGN.format(name=name, python=sys.executable, root=ROOT, n=n))
    return path


def cli(folder: Path, spec: Path, calls: Path) -> subprocess.Popen:
    env = dict(os.environ, SCIWM_TEST_CALL_LOG=str(calls), PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sciwm.cli", "campaign", "run", spec.name, "--no-prefect"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_running(proc: subprocess.Popen, store_uri: str, name: str, done_at_least: int) -> None:
    """Wait until ``done_at_least`` experiments finished and one is running."""
    deadline = time.time() + 180
    store = None
    while time.time() < deadline:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.fail(f"campaign ended before it could be killed:\n{proc.stdout.read()}")
        try:
            store = store or RecordStore(store_uri)
            recs = store.records(name)
        except Exception:  # noqa: BLE001 - the campaign may still be creating the store
            continue
        done = sum(r.status.finished for r in recs)
        if done >= done_at_least and any(r.status is Status.RUNNING for r in recs):
            return
    proc.kill()
    pytest.fail("the campaign never reached a state worth killing")


def test_campaign_on_slurm_survives_sigkill(tmp_path: Path) -> None:
    name, n = "slurm-campaign", 8
    spec = write_campaign(tmp_path, name, n)
    calls = tmp_path / "calls.log"
    uri = default_tracking_uri(tmp_path)
    kills = 0
    for done_at_least in (1, 3):
        proc = cli(tmp_path, spec, calls)
        wait_for_running(proc, uri, name, done_at_least)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    proc = cli(tmp_path, spec, calls)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert kills == 2

    records = RecordStore(uri).records(name)
    ids = [r.experiment.id for r in records]
    assert len(ids) == len(set(ids)) == n, "every experiment recorded exactly once"
    assert all(r.status is Status.COMPLETED for r in records), [r.observation for r in records]
    lines = calls.read_text().splitlines()
    assert len(lines) == len(set(lines)) == n, "every experiment ran exactly once"
    for r in records:
        assert r.handle is not None and r.handle["job_id"].isdigit()
        assert r.observation.metadata["slurm_state"] == "COMPLETED"
        assert r.observation.cost > 0
    # one Slurm job per experiment, all named after their experiment
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True
    ).stdout.split()
    for r in records:
        assert jobs.count(f"sciwm-{r.experiment.id}") == 1
