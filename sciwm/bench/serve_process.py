"""``sciwm serve`` as a child process on loopback: started, waited for, asked, stopped.

The serve benchmark measures through it, and the integration tests drive the page through it:
both run the real command (uvicorn and all), not an in-process app.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """A running ``sciwm serve`` on ``127.0.0.1``.

    Args:
        tracking_uri: The store it answers from.
        token: A bearer token (given through ``SCIWM_SERVE_TOKEN``), or ``None``.
        args: Further options of ``sciwm serve``.
        env: Extra environment variables (e.g. thread counts).
        cwd: Its working directory (default: a fresh temporary one).
    """

    def __init__(
        self,
        tracking_uri: str,
        token: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = args
        self._env = dict(env or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="sciwm-serve-proc-")
        self.cwd = cwd or Path(self._tmp.name)
        self.log_path = Path(self._tmp.name) / "serve.log"
        self._proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, timeout_s: float = 180.0) -> float:
        """Start the command and wait until ``/api/health`` answers.

        Returns:
            Seconds from the start of the process to its first healthy answer.

        Raises:
            RuntimeError: If it exits or does not answer within ``timeout_s`` (with its log).
        """
        env = {**os.environ, **self._env}
        env.pop("SCIWM_SERVE_TOKEN", None)
        if self.token is not None:
            env["SCIWM_SERVE_TOKEN"] = self.token
        cmd = [sys.executable, "-m", "sciwm.cli", "--tracking-uri", self.tracking_uri]
        cmd += ["serve", "--port", str(self.port), *self._args]
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.started_at = time.perf_counter()
        self._proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = self.started_at + timeout_s
        while time.perf_counter() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"sciwm serve exited with {self._proc.returncode}:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sciwm serve did not answer in {timeout_s:.0f} s:\n{self.log()}")

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One request; returns ``(status, parsed JSON or raw bytes)``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, raw, kind = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, kind = err.code, err.read(), err.headers.get("Content-Type", "")
        return status, json.loads(raw) if kind.startswith("application/json") else raw

    def log(self) -> str:
        """Everything the process printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def close(self) -> None:
        """Stop it and remove its log folder."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
