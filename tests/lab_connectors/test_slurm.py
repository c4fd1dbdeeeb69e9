"""Fast checks of the Slurm connector: settings, job scripts, parsing of Slurm's output.

The connector against a real Slurm is in tests/integration/slurm/.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lab_connectors import _slurm_commands as sc
from lab_connectors._slurm_settings import load_template, parse_settings, render
from lab_connectors.slurm import SlurmConnector, job_comment, job_name
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Experiment

FN = "tests.lab_connectors.fixtures_fns:quadratic"

SCONTROL = (
    "JobId=42 JobName=sciwm-00001-abc UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=CANCELLED Reason=None "
    "Dependency=(null) Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15 "
    "RunTime=00:01:05 TimeLimit=00:02:00 TimeMin=N/A AllocNode:Sid=localhost:466 "
    "NtasksPerN:B:S:C=0:0:*:* CPUs/Task=1 Command=/tmp/a dir/job.sh WorkDir=/tmp/a dir "
    "Comment=sciwm:0123 NodeList=vm\n"
)


def test_parse_scontrol_keeps_values_with_spaces() -> None:
    fields = sc.parse_scontrol(SCONTROL)
    assert fields["JobId"] == "42"
    assert sc.job_state(fields) == "CANCELLED"
    assert fields["Command"] == "/tmp/a dir/job.sh"
    assert fields["CPUs/Task"] == "1"
    assert fields["NtasksPerN:B:S:C"] == "0:0:*:*"
    assert sc.duration_s(fields["RunTime"]) == 65.0
    assert sc.job_state({"JobState": "CANCELLED by 0"}) == "CANCELLED"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:07", 7.0), ("12:30", 750.0), ("1-02:00:00", 93600.0), ("UNLIMITED", None), ("", None)],
)
def test_duration(text: str, seconds: float | None) -> None:
    assert sc.duration_s(text) == seconds


def test_parse_job_id() -> None:
    assert sc.parse_job_id("123\n") == "123"
    assert sc.parse_job_id("77;cluster-a\n") == "77"
    with pytest.raises(ConnectorError, match="not a job id"):
        sc.parse_job_id("Submitted batch job 5\n")


def test_missing_command_is_a_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="slurm_bin") as info:
        sc.run([str(tmp_path / "sbatch"), "--version"], "submit")
    assert not isinstance(info.value, BackendUnavailable)  # a setting to fix, not a pause


def test_controller_down_is_unreachable(tmp_path: Path) -> None:
    fake = tmp_path / "squeue"  # a test double standing in for a client whose slurmctld is down
    fake.write_text(
        "#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(BackendUnavailable, match="slurmctld is running"):
        sc.run([str(fake)], "poll")


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="unknown setting.*'partiton'"):
        SlurmConnector(tmp_path, function=FN, partiton="gpu")
    with pytest.raises(ConnectorError, match="slurm connector.*'function'"):
        SlurmConnector(tmp_path)
    with pytest.raises(ConnectorError, match="mem='lots'"):
        SlurmConnector(tmp_path, function=FN, mem="lots")
    with pytest.raises(ConnectorError, match="gpus=0"):
        SlurmConnector(tmp_path, function=FN, gpus=0)
    with pytest.raises(ConnectorError, match="sbatch_options"):
        SlurmConnector(tmp_path, function=FN, sbatch_options=["qos=short"])
    with pytest.raises(ConnectorError, match="cost_unit"):
        SlurmConnector(tmp_path, function=FN, cost_unit="days")


def test_time_limit_is_the_cost_cap_in_whole_minutes(tmp_path: Path) -> None:
    s = parse_settings(tmp_path, {"function": FN, "time_limit_min": 30})
    assert s.limit_minutes(None) == 30
    assert s.limit_minutes(5.0) == 1
    assert s.limit_minutes(60.0) == 1
    assert s.limit_minutes(61.0) == 2
    hours = parse_settings(tmp_path, {"function": FN, "cost_unit": "h"})
    assert hours.limit_minutes(1.5) == 90


def test_job_script_from_the_default_template(tmp_path: Path) -> None:
    conn = SlurmConnector(
        tmp_path,
        function=FN,
        partition="gpu",
        gpus=2,
        mem="4G",
        cpus_per_task=4,
        setup=["module load cuda/12", "source /opt/venv/bin/activate"],
        sbatch_options=["--account=lab"],
        env={"OMP_NUM_THREADS": "4"},
        python="/opt/venv/bin/python",
    )
    exp = Experiment.create("c", 0, {"x": 0.1})
    script = conn.job_script(exp, tmp_path / "my dir")
    lines = script.splitlines()
    directives = [ln for ln in lines if ln.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus=2",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=4G",
        "#SBATCH --account=lab",
    ]
    first_command = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert first_command > max(lines.index(d) for d in directives)  # sbatch reads only these
    assert "module load cuda/12" in lines
    assert "export OMP_NUM_THREADS=4" in lines
    assert (
        lines[-1]
        == f"exec /opt/venv/bin/python -m lab_connectors._local_worker '{tmp_path}/my dir'"
    )
    out = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert out.returncode == 0, out.stderr


def test_custom_template(tmp_path: Path) -> None:
    good = tmp_path / "job.tmpl"
    good.write_text("#!/bin/bash\n#SBATCH --qos=long\necho ${HOME} {{ job_name }}\n{{ run }}\n")
    conn = SlurmConnector(tmp_path, function=FN, template=str(good))
    exp = Experiment.create("c", 0, {"x": 0.1})
    script = conn.job_script(exp, tmp_path / exp.id)
    assert f"echo ${{HOME}} {job_name(exp.id)}" in script  # shell variables are left alone
    bad = tmp_path / "bad.tmpl"
    bad.write_text("#!/bin/bash\n{{ partition }}\n")
    with pytest.raises(ConnectorError, match=r"unknown placeholder.*'partition'"):
        load_template(str(bad))
    bad.write_text("#!/bin/bash\necho hi\n")
    with pytest.raises(ConnectorError, match=r"\{\{ run \}\}"):
        load_template(str(bad))
    with pytest.raises(ConnectorError, match="cannot read"):
        load_template(str(tmp_path / "nope.tmpl"))
    assert render("a {{ run }} b", {"run": "X"}) == "a X b"


def test_job_identity(tmp_path: Path) -> None:
    assert job_name("00003-abcdef0123") == "sciwm-00003-abcdef0123"
    assert job_comment(tmp_path / "a") != job_comment(tmp_path / "b")
    assert job_comment(tmp_path / "a").startswith("sciwm:")


def test_check_without_slurm_says_what_is_missing(tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    conn = SlurmConnector(tmp_path, function=FN, slurm_bin=str(tmp_path / "bin"), python="nope3")
    conn.config = replace(conn.config, shared_dir=Path("/proc/sciwm-not-writable"))
    found = {f.aspect: f for f in conn.check()}
    assert not found["commands"].ok and "slurm_bin" in found["commands"].fix
    assert "reachable" not in found  # nothing to ask without the commands
    assert not found["paths"].ok and "not writable" in found["paths"].message
    assert not found["python"].ok
