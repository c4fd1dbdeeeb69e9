"""A real PostgreSQL server on loopback, and an MLflow tracking server on top of it.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` as the ``postgres`` user in a scratch
directory, on a free port of 127.0.0.1, with password authentication;
:class:`MlflowServer` runs ``mlflow server`` with a PostgreSQL backend store. The packages come
from ``.ci/services/install-postgresql.sh``; the driver from the ``postgres`` extra.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.services.slurm import free_port

INSTALL_HINT = "run `bash .ci/services/install-postgresql.sh` (as root) to install PostgreSQL"
USER, PASSWORD = "sciwm", "s3cret-pg-pw"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresServer:
    """One PostgreSQL cluster under ``root`` on ``127.0.0.1:port``.

    Args:
        root: Scratch directory (made over to the ``postgres`` user).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.data = self.root / "data"
        self.port = free_port()
        self.bin = pg_bin()

    def uri(self, database: str, driver: str = "postgresql") -> str:
        """A SQLAlchemy/MLflow URI of ``database`` with the password in it."""
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb, then start the server; returns once it accepts connections.

        Raises:
            RuntimeError: If PostgreSQL is not installed or does not start (with its log).
        """
        if self.bin is None:
            raise RuntimeError(f"PostgreSQL is not installed here; {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise RuntimeError(
                "the PostgreSQL fixture runs initdb as the postgres user: run as root"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        self._as_postgres(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200",
            "start",
        )
        return self

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URI."""
        self._as_postgres("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return self.uri(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        if self.bin is None or not (self.data / "postmaster.pid").exists():
            return
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def log(self) -> str:
        try:
            return "\n".join((self.root / "log").read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _as_postgres(self, program: str, *args: str, check: bool = True) -> None:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            env={**os.environ, "PGPASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{program} failed: {out.stderr.strip()}\n{self.log()}")


class MlflowServer:
    """``mlflow server`` on a loopback port with a PostgreSQL backend store.

    Args:
        backend_uri: The ``postgresql://`` URI of its database.
        root: Directory for its artifacts and log.
    """

    def __init__(self, backend_uri: str, root: Path) -> None:
        self.backend_uri = backend_uri
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120.0) -> MlflowServer:
        """Start the server; returns once ``/health`` answers.

        Raises:
            RuntimeError: If it does not answer in time (with the end of its log).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "mlflow-server.log", "w")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        self._proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                self.backend_uri,
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        tail = (self.root / "mlflow-server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"mlflow server did not answer on {self.url} within {timeout_s} s:\n{tail}"
        )

    def stop(self) -> None:
        """Stop the server and its workers."""
        if self._proc is None or self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=30)
