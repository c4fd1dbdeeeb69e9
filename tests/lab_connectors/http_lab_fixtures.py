"""A real reference lab server on loopback for the HTTP connector's tests.

The lab runs :mod:`tests.lab_connectors.fixtures_fns` callables through the local connector
(real worker processes) behind the real FastAPI app, served by uvicorn from a thread.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab_connectors.http_server import FaultInjector, LabBackend, LabServer, create_app
from lab_connectors.local import LocalConnector

FNS = "tests.lab_connectors.fixtures_fns"
TOKEN_ENV = "SCIWM_TEST_LAB_TOKEN"
TOKEN = "s3cret-t0ken-for-tests"


@dataclass
class RunningLab:
    """A started lab: its server (``url``), its backend and its fault injector, if any."""

    server: LabServer
    backend: LabBackend
    faults: FaultInjector | None

    @property
    def url(self) -> str:
        return self.server.url

    def runs(self, experiment_id: str) -> int:
        """How many times the callable really ran for ``experiment_id`` (``runs.txt`` lines)."""
        path = self.backend.connector.workdir / experiment_id / "runs.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0


@contextmanager
def running_lab(
    state_dir: Path,
    function: str = "slow_quadratic",
    parallelism: int = 4,
    token: str | None = TOKEN,
    faults: dict[str, Any] | None = None,
    tls: tuple[Path, Path] | None = None,
    port: int = 0,
) -> Iterator[RunningLab]:
    """Start a lab on ``127.0.0.1`` (``port``, or any free one) and stop it afterwards.

    ``function`` is a callable of :mod:`tests.lab_connectors.fixtures_fns` or a full
    ``package.module:function``.
    """
    ref = function if ":" in function else f"{FNS}:{function}"
    conn = LocalConnector(state_dir / "backend", function=ref, timeout_s=30, parallelism=64)
    backend = LabBackend(conn, state_dir, parallelism, name="test lab")
    backend.start(interval_s=0.02)
    app: Any = create_app(backend, token)
    injector = None
    if faults is not None:
        injector = app = FaultInjector(app, **faults)
    cert, key = tls if tls is not None else (None, None)
    try:
        with LabServer(app, port=port, ssl_certfile=cert, ssl_keyfile=key) as server:
            yield RunningLab(server, backend, injector)
    finally:
        backend.stop()


def self_signed(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: ``(ca, cert, key)``.

    Made with the ``openssl`` command, as a lab's administrator would.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key
