"""A real Prefect server and a process worker on loopback, for the integration tests.

:class:`PrefectServer` runs ``prefect server start`` on a free port of 127.0.0.1 with its own
``PREFECT_HOME``; :class:`PrefectWorker` creates a process work pool and runs
``prefect worker start --pool NAME`` against it, from this virtual environment so that it
imports this checkout's code. Both stop with their process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.services.slurm import free_port

PREFECT = str(Path(sys.executable).parent / "prefect")


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """A quiet, local Prefect environment under ``home``."""
    env = dict(
        os.environ,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="true",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class _Process:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.proc: subprocess.Popen | None = None

    def _spawn(self, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / f"{self.name}.log", "w")  # noqa: SIM115 - closed at exit
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
        )

    def log(self) -> str:
        try:
            return (self.root / f"{self.name}.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process group; SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


class PrefectServer(_Process):
    """``prefect server start`` on ``127.0.0.1:port``; :attr:`api_url` is its API."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "prefect-server")
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout_s: float = 120.0) -> PrefectServer:
        """Start the server; returns once ``/health`` answers.

        Raises:
            RuntimeError: If it does not answer in time (with the end of its log).
        """
        cmd = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self._spawn(cmd, prefect_env(self.root / "home"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"prefect server did not answer within {timeout_s} s:\n{self.log()}")

    def request(self, path: str, body: dict | None = None) -> object:
        """POST (with ``body``) or GET ``path`` of the API; the decoded JSON reply."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.api_url}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read() or b"null")


class PrefectWorker(_Process):
    """A process work pool ``pool`` on ``server`` and one worker polling it every second.

    Args:
        server: The running server.
        pool: Name of the work pool to create.
        root: Directory for the worker's home and log.
        cwd: The worker's working directory (flow runs start there).
        env: Extra environment variables of the worker (and so of its flow runs).
    """

    def __init__(
        self, server: PrefectServer, pool: str, root: Path, cwd: Path, env: dict[str, str]
    ) -> None:
        super().__init__(root, f"worker-{pool}")
        self.server, self.pool, self.cwd, self.extra_env = server, pool, cwd, env

    def start(self, timeout_s: float = 120.0) -> PrefectWorker:
        """Create the pool and start the worker; returns once the server sees it online."""
        env = {**prefect_env(self.root / "home", self.server.api_url), **self.extra_env}
        env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
        env["PREFECT_WORKER_HEARTBEAT_SECONDS"] = "5"
        out = subprocess.run(
            [PREFECT, "work-pool", "create", self.pool, "--type", "process"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0 and "already exists" not in out.stdout + out.stderr:
            raise RuntimeError(f"prefect work-pool create failed:\n{out.stdout}{out.stderr}")
        self._spawn([PREFECT, "worker", "start", "--pool", self.pool], env, cwd=self.cwd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            workers = self.server.request(f"/work_pools/{self.pool}/workers/filter", {})
            if any(w.get("status") == "ONLINE" for w in workers):  # type: ignore[union-attr]
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the worker of pool {self.pool} did not come online:\n{self.log()}")
