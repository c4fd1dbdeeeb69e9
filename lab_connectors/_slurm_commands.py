"""Calling Slurm's client commands and reading what they print."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from sciwm.errors import BackendUnavailable, ConnectorError

#: Job states in which the job has not finished yet.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
#: Texts of Slurm clients that cannot talk to the controller (a backend that is down).
UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "communication connection failure",
    "zero bytes were transmitted",
    "unable to establish connection",
    "munge",
    "slurm_load_jobs error: unable",
    "could not establish a configuration source",
)
_INVALID_JOB = "invalid job id specified"
_KEY = re.compile(r"(?:^|\s)([A-Za-z][\w/:]*)=")
_DURATION = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)")


class SlurmUnreachable(BackendUnavailable):
    """Slurm's controller cannot be reached, or did not answer in time."""


def run(cmd: Sequence[str], what: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run a Slurm command; returns the finished process whatever its exit status.

    Raises:
        ConnectorError: If the command is not installed.
        SlurmUnreachable: If it times out or says the controller cannot be reached.
    """
    try:
        out = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ConnectorError(
            f"cannot run {cmd[0]!r} to {what}: no such command. Install Slurm's client commands "
            "on this machine, or set the slurm connector's slurm_bin to the directory holding "
            "sbatch, squeue, scontrol and scancel."
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmUnreachable(
            f"{os.path.basename(cmd[0])} did not answer within {timeout_s:g} s while trying to "
            f"{what}; is slurmctld overloaded or down? (`sinfo` should answer)"
        ) from None
    if out.returncode != 0 and any(m in out.stderr.lower() for m in UNREACHABLE):
        raise SlurmUnreachable(
            f"Slurm's controller cannot be reached while trying to {what}: "
            f"{first_line(out.stderr)}. Check that slurmctld is running and that SLURM_CONF "
            "points at the cluster's slurm.conf; nothing was lost, sciwm retries."
        )
    return out


def first_line(text: str) -> str:
    """The first non-empty line of ``text`` (``"no output"`` if there is none)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no output"


def parse_job_id(stdout: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``"123"`` or ``"123;cluster"``).

    Raises:
        ConnectorError: If the output holds no job id.
    """
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";", 1)[0].strip()
    if not re.fullmatch(r"\d+(_\d+)?", job_id):
        raise ConnectorError(
            f"sbatch --parsable printed {stdout.strip()!r}, not a job id; is `sbatch` the real "
            "Slurm command?"
        )
    return job_id


def parse_scontrol(text: str) -> dict[str, str]:
    """The ``Key=Value`` fields of one line of ``scontrol show job -o``.

    Values may hold spaces (``Command=``, ``Reason=``): a value runs up to the next
    ``Key=``.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    keys = list(_KEY.finditer(line))
    fields = {}
    for i, match in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(line)
        fields[match.group(1)] = line[match.end() : end].strip()
    return fields


def duration_s(text: str | None) -> float | None:
    """Seconds in a Slurm duration (``MM:SS``, ``HH:MM:SS``, ``D-HH:MM:SS``), else ``None``."""
    if not text:
        return None
    found = _DURATION.fullmatch(text.strip())
    if not found:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def job_state(fields: dict[str, str]) -> str:
    """The base job state (``JobState=CANCELLED by 0`` gives ``CANCELLED``)."""
    return fields.get("JobState", "UNKNOWN").split()[0].split("+")[0].upper()


def show_job(scontrol: str, job_id: str) -> dict[str, str] | None:
    """``scontrol show job -o ID`` as fields; ``None`` once Slurm no longer knows the job.

    Raises:
        SlurmUnreachable: If the controller cannot be reached.
        ConnectorError: If scontrol fails for another reason.
    """
    out = run([scontrol, "show", "job", "-o", job_id], f"read the state of job {job_id}")
    if out.returncode != 0:
        if _INVALID_JOB in out.stderr.lower():
            return None
        raise ConnectorError(f"scontrol show job {job_id} failed: {first_line(out.stderr)}")
    fields = parse_scontrol(out.stdout)
    return fields if fields.get("JobId") else None


def find_job(squeue: str, name: str, comment: str) -> str | None:
    """The id of a job Slurm still knows with this name and comment (newest first).

    Raises:
        SlurmUnreachable: If the controller cannot be reached.
    """
    out = run(
        [squeue, "-h", "-t", "all", "-u", str(os.geteuid()), "-n", name, "-o", "%i|%k"],
        f"look for an earlier job named {name}",
    )
    if out.returncode != 0:
        raise ConnectorError(f"squeue failed: {first_line(out.stderr)}")
    found = []
    for line in out.stdout.splitlines():
        job_id, _, job_comment = line.strip().partition("|")
        if job_comment.strip() == comment and job_id.strip().isdigit():
            found.append(int(job_id))
    return str(max(found)) if found else None
