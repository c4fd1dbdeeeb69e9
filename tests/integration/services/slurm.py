"""A real single-node Slurm cluster on loopback, for the integration tests.

:class:`SlurmCluster` writes ``slurm.conf`` into a scratch directory, starts a private
``munged`` (its own socket and key), ``slurmctld`` and ``slurmd``, and waits for the
node to be idle; :meth:`SlurmCluster.stop` ends the three daemons. Clients find the cluster
through ``SLURM_CONF`` (see :attr:`SlurmCluster.env`). The packages come from
``.ci/services/install-slurm.sh``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "run `bash .ci/services/install-slurm.sh` (as root) to install slurm-wlm and munge"
_DAEMONS = ("munged", "slurmctld", "slurmd")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find(binary: str) -> str | None:
    return shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/sbin") / binary) if p.exists()), None
    )


def missing_binaries() -> list[str]:
    """The Slurm and munge programs not installed here."""
    need = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "mungekey", *_DAEMONS)
    return [b for b in need if _find(b) is None]


class SlurmCluster:
    """slurmctld + slurmd (+ munged) for one node, all state under ``root``.

    Args:
        root: Scratch directory for configuration, state, spool, logs and pid files.
        partition: Name of the one (default) partition.
    """

    def __init__(self, root: Path, partition: str = "debug") -> None:
        self.root = root.resolve()
        self.partition = partition
        self.conf = self.root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.munge_socket = self.root / "munge" / "munge.socket"
        self._pids: dict[str, Path] = {}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point Slurm's clients at this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def start(self, timeout_s: float = 60.0) -> SlurmCluster:
        """Configure and start the daemons; returns once the node is idle.

        Raises:
            RuntimeError: If a program is missing or the node does not come up (with logs).
        """
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"Slurm is not installed here (missing {missing}); {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise RuntimeError("the Slurm fixture starts slurmd, which must run as root")
        for sub in ("state", "spool", "log", "run", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("state", "log", "run"):
            shutil.chown(self.root / sub, "slurm", "slurm")
        shutil.chown(self.root / "munge", "munge", "munge")
        os.chmod(self.root / "munge", 0o755)
        os.chmod(self.root, 0o755)
        self._write_conf()
        self._start_munged()
        self._run_daemon("slurmctld", [_find("slurmctld"), "-f", str(self.conf)])
        self._run_daemon("slurmd", [_find("slurmd"), "-f", str(self.conf)])
        self._wait_idle(timeout_s)
        return self

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged; waits for each to exit."""
        if "slurmctld" in self._pids:
            self._cancel_all()
        for name in reversed(_DAEMONS):
            pid_file = self._pids.pop(name, None)
            if pid_file is None:
                continue
            pid = _read_pid(pid_file)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for pid in self._stray_steps():  # a job step whose slurmd is gone never ends alone
            os.kill(pid, signal.SIGKILL)

    def sinfo(self) -> str:
        """``sinfo`` of the node: its state, e.g. ``idle``."""
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip()

    def logs(self) -> str:
        """The end of each daemon's log, for a failure message."""
        parts = []
        for log in sorted((self.root / "log").glob("*.log")) + [self.root / "munge" / "log"]:
            if log.exists():
                lines = log.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- internals -----------------------------------------------------------------------------

    def _cancel_all(self) -> None:
        env = {**os.environ, **self.env}
        subprocess.run(["scancel", "--full", f"--user={os.geteuid()}"], env=env, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["squeue", "-h", "-t", "PD,R,CG,S,CF", "-o", "%i"],
                env=env,
                capture_output=True,
                text=True,
                timeout=20,
            )
            if out.returncode != 0 or not out.stdout.strip():
                return
            time.sleep(0.3)

    def _stray_steps(self) -> list[int]:
        """Pids of ``slurmstepd`` processes that write into this cluster's directory."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if proc.joinpath("comm").read_text().strip() != "slurmstepd":
                    continue
                links = [os.readlink(fd) for fd in proc.joinpath("fd").iterdir()]
            except OSError:
                continue
            if any(link.startswith(str(self.root)) for link in links) and _alive(int(proc.name)):
                pids.append(int(proc.name))
        return pids

    def _write_conf(self) -> None:
        node_line = subprocess.run(
            [_find("slurmd"), "-C"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[0]
        node_line = " ".join(w for w in node_line.split() if not w.startswith("UpTime="))
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=sciwm-test",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "SlurmUser=slurm",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "ReturnToService=2",
                    "MinJobAge=300",
                    "MpiDefault=none",
                    "SchedulerType=sched/backfill",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={r}/log/jobcomp.txt",
                    f"StateSaveLocation={r}/state",
                    f"SlurmdSpoolDir={r}/spool",
                    f"SlurmctldLogFile={r}/log/slurmctld.log",
                    f"SlurmdLogFile={r}/log/slurmd.log",
                    f"SlurmctldPidFile={r}/run/slurmctld.pid",
                    f"SlurmdPidFile={r}/run/slurmd.pid",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "InactiveLimit=0",
                    "KillWait=5",
                    "Waittime=0",
                    f"{node_line} NodeAddr=127.0.0.1 State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.node} Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _start_munged(self) -> None:
        munge_dir = self.root / "munge"
        pid_file = munge_dir / "munged.pid"
        key = munge_dir / "munge.key"  # a key of its own: /etc/munge's may be missing
        made = subprocess.run(
            ["runuser", "-u", "munge", "--", _find("mungekey"), "--create", f"--keyfile={key}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if made.returncode != 0:
            raise RuntimeError(f"mungekey could not create {key}: {made.stderr.strip()}")
        cmd = [
            "runuser",
            "-u",
            "munge",
            "--",
            _find("munged"),
            f"--socket={self.munge_socket}",
            f"--pid-file={pid_file}",
            f"--log-file={munge_dir / 'log'}",
            f"--seed-file={munge_dir / 'seed'}",
            f"--key-file={key}",
            "--force",
        ]
        self._run_daemon("munged", cmd, pid_file)

    def _run_daemon(self, name: str, cmd: list, pid_file: Path | None = None) -> None:
        pid_file = pid_file or self.root / "run" / f"{name}.pid"
        out = subprocess.run(
            [str(c) for c in cmd],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{name} did not start: {out.stderr.strip()}\n{self.logs()}")
        deadline = time.monotonic() + 20
        while _read_pid(pid_file) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _read_pid(pid_file) is None:
            raise RuntimeError(f"{name} wrote no pid file {pid_file}\n{self.logs()}")
        self._pids[name] = pid_file

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            state = self.sinfo()
            if state == "idle":
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"the Slurm node is {state!r}, not idle, after {timeout_s} s\n{self.logs()}"
        )


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
