"""The Slurm connector's jobs against a real Slurm: limits, failures, crash windows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab_connectors._slurm_commands import parse_scontrol
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import wait_finished
from tests.integration.slurm.test_slurm_conformance import slurm_connector

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("slurm_cluster")]


def scontrol(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True)
    return parse_scontrol(out.stdout)


def test_a_crash_between_sbatch_and_the_handle_submits_nothing_new(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "slow_quadratic")
    exp = Experiment.create("slurm-crash", 0, {"x": 0.2, "delay": 1.0})
    handle = conn.submit(exp)
    exp_dir = Path(handle["dir"])
    (exp_dir / "handle.json").unlink()  # the campaign died right after sbatch returned
    again = slurm_connector(tmp_path, "slow_quadratic").submit(exp)
    assert again == handle
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    assert len((exp_dir / "runs.txt").read_text().splitlines()) == 1


def test_the_cost_cap_becomes_the_time_limit_and_stops_the_experiment(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "slow_quadratic")
    capped = Experiment.create("slurm-cap", 0, {"x": 0.2, "delay": 30.0}, max_cost=2.0)
    roomy = Experiment.create("slurm-cap", 1, {"x": 0.2, "delay": 0.1}, max_cost=150.0)
    h_capped, h_roomy = conn.submit(capped), conn.submit(roomy)
    assert scontrol(h_capped["job_id"])["TimeLimit"] == "00:01:00"
    assert scontrol(h_roomy["job_id"])["TimeLimit"] == "00:03:00"
    assert wait_finished(conn, h_capped, 60) is Status.FAILED
    obs = conn.fetch(h_capped)
    assert "timed out" in obs.error and obs.metadata["timed_out"] is True
    assert 2.0 <= obs.cost < 10.0  # the job's elapsed time, stopped at the cap
    assert wait_finished(conn, h_roomy, 60) is Status.COMPLETED
    assert conn.fetch(h_roomy).metadata["cost_source"] == "slurm_elapsed"


def test_sbatch_refusing_the_job_says_why(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "quadratic", partition="nosuchpartition")
    with pytest.raises(ConnectorError, match=r"sbatch refused.*(?i:invalid partition)"):
        conn.submit(Experiment.create("slurm-bad", 0, {"x": 0.1}))


def test_a_job_script_that_fails_is_a_failed_experiment(tmp_path: Path) -> None:
    conn = slurm_connector(
        tmp_path, "quadratic", setup=["echo 'module not found: cuda' >&2", "false"]
    )
    handle = conn.submit(Experiment.create("slurm-setup", 0, {"x": 0.1}))
    assert wait_finished(conn, handle, 60) is Status.FAILED
    obs = conn.fetch(handle)
    assert "ended FAILED (exit code 1:0)" in obs.error
    assert "module not found: cuda" in obs.error  # the job's stderr tail
    assert "transient" not in obs.metadata  # it would fail the same way again


def test_a_process_killed_under_its_job_is_a_transient_failure(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "slow_quadratic")
    handle = conn.submit(Experiment.create("slurm-killed", 0, {"x": 0.1, "delay": 60.0}))
    claim = Path(handle["dir"]) / "claimed"
    deadline = time.monotonic() + 60
    while not claim.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(json.loads(claim.read_text())["pid"], signal.SIGKILL)  # the OOM killer, say
    assert wait_finished(conn, handle, 60) is Status.FAILED
    obs = conn.fetch(handle)
    assert "without a result" in obs.error
    assert obs.metadata["transient"] is True  # the loop may try it again


def test_results_outlive_slurms_memory_of_the_job(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "quadratic")
    handle = conn.submit(Experiment.create("slurm-old", 0, {"x": 0.4}))
    assert wait_finished(conn, handle, 60) is Status.COMPLETED
    first = conn.fetch(handle)
    stored = json.loads((Path(handle["dir"]) / "observation.json").read_text())
    assert stored["outcomes"] == first.outcomes
    # a handle whose job Slurm has forgotten, with a result but no observation yet
    (Path(handle["dir"]) / "observation.json").unlink()
    gone = {**handle, "job_id": "999999"}
    assert conn.poll(gone) is Status.COMPLETED
    assert conn.fetch(gone).outcomes == first.outcomes


@pytest.mark.slow
def test_a_job_past_its_time_limit_is_stopped_by_slurm(tmp_path: Path) -> None:
    conn = slurm_connector(tmp_path, "slow_quadratic", time_limit_min=1)
    start = time.monotonic()
    handle = conn.submit(Experiment.create("slurm-timeout", 0, {"x": 0.1, "delay": 600.0}))
    assert wait_finished(conn, handle, 150) is Status.FAILED
    obs = conn.fetch(handle)
    assert "TIMEOUT" in obs.error and obs.metadata["timed_out"] is True
    assert obs.metadata["slurm_state"] == "TIMEOUT"
    assert 60.0 <= obs.cost <= 120.0
    assert time.monotonic() - start < 150


def test_check_finds_the_cluster_and_names_what_is_wrong(tmp_path: Path) -> None:
    good = {f.aspect: f for f in slurm_connector(tmp_path / "a", "quadratic").check()}
    assert all(f.ok for f in good.values()), good
    assert "partition 'debug'" in good["queue"].message
    bad = slurm_connector(tmp_path / "b", "quadratic", partition="gpu-nope").check()
    queue = next(f for f in bad if f.aspect == "queue")
    assert (
        not queue.ok and "'gpu-nope' does not exist" in queue.message and "debug" in queue.message
    )
