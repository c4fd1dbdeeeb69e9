"""``sciwm connectors check`` for the Slurm connector: commands, controller, partition, paths."""

from __future__ import annotations

import os
import shutil
import uuid

from lab_connectors import _slurm_commands as sc
from lab_connectors._slurm_settings import SlurmSettings
from sciwm.connector import Finding
from sciwm.errors import ConnectorError

_COMMANDS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")


def check(config: SlurmSettings) -> list[Finding]:
    """Findings on the Slurm commands, the controller, the partition and ``shared_dir``."""
    findings = [_commands(config)]
    if findings[0].ok:
        reachable = _controller(config)
        findings.append(reachable)
        if reachable.ok:
            findings.append(_partition(config))
    findings.append(_shared_dir(config))
    findings.append(_python(config))
    return findings


def _commands(config: SlurmSettings) -> Finding:
    missing = [c for c in _COMMANDS if shutil.which(config.command(c)) is None]
    if missing:
        where = f"in {config.slurm_bin}" if config.slurm_bin else "on PATH"
        return Finding(
            "commands",
            False,
            f"Slurm's client commands {missing} are not {where}",
            "install Slurm's client commands here (a login node has them), or set slurm_bin "
            "to the directory that holds sbatch",
        )
    return Finding("commands", True, f"sbatch, squeue, scontrol, scancel found {_where(config)}")


def _controller(config: SlurmSettings) -> Finding:
    try:
        out = sc.run([config.command("scontrol"), "ping"], "ping slurmctld", timeout_s=30)
    except ConnectorError as exc:
        return Finding("reachable", False, str(exc), "start slurmctld or fix SLURM_CONF")
    if out.returncode != 0 or "UP" not in out.stdout:
        return Finding(
            "reachable",
            False,
            f"scontrol ping says: {sc.first_line(out.stdout + out.stderr)}",
            "start slurmctld, or point SLURM_CONF at the cluster's slurm.conf",
        )
    return Finding("reachable", True, f"slurmctld answers: {sc.first_line(out.stdout)}")


def _partition(config: SlurmSettings) -> Finding:
    out = sc.run([config.command("sinfo"), "-h", "-o", "%P %a"], "list the partitions")
    parts = {}
    for line in out.stdout.split("\n"):
        if line.strip():
            name, _, avail = line.strip().partition(" ")
            parts[name] = avail
    default = next((p.rstrip("*") for p in parts if p.endswith("*")), None)
    names = {p.rstrip("*"): a for p, a in parts.items()}
    wanted = config.partition or default
    if wanted is None:
        return Finding(
            "queue",
            False,
            f"no partition is set and the cluster has no default one (it has {sorted(names)})",
            "set the slurm connector's partition",
        )
    if wanted not in names:
        return Finding(
            "queue",
            False,
            f"partition {wanted!r} does not exist; the cluster has {sorted(names)}",
            "set partition to one of those",
        )
    if names[wanted] != "up":
        return Finding("queue", False, f"partition {wanted!r} is {names[wanted]}", "ask the admins")
    how = "set" if config.partition else "the cluster's default"
    return Finding("queue", True, f"partition {wanted!r} ({how}) is up")


def _shared_dir(config: SlurmSettings) -> Finding:
    probe = config.shared_dir / f".sciwm-check-{uuid.uuid4().hex}"
    try:
        config.shared_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok\n")
        probe.unlink()
    except OSError as exc:
        return Finding(
            "paths",
            False,
            f"shared_dir {config.shared_dir} is not writable ({exc.strerror})",
            "set shared_dir to a directory on a file system the compute nodes share",
        )
    return Finding("paths", True, f"shared_dir {config.shared_dir} is writable")


def _python(config: SlurmSettings) -> Finding:
    found = shutil.which(config.python)
    if found is None:
        return Finding(
            "python",
            False,
            f"python={config.python!r} is not found on this machine",
            "give the path of the interpreter the compute nodes run (with sciwm installed)",
        )
    return Finding("python", True, f"python {found} exists here (the nodes must see it too)")


def _where(config: SlurmSettings) -> str:
    if config.slurm_bin:
        return f"in {config.slurm_bin}"
    return f"in {os.path.dirname(shutil.which(config.command('sbatch')) or '') or 'PATH'}"
