"""Run a lab app with uvicorn in a background thread (tests, benchmarks, embedding)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from sciwm.errors import ConnectorError


class LabServer:
    """A context manager that serves ``app`` on ``host:port`` from a thread.

    ``port=0`` picks a free port; :attr:`url` says where it listens once entered.

    Args:
        app: An ASGI application (usually :func:`lab_connectors.http_server.app.create_app`).
        host: Address to bind (loopback by default).
        port: Port, or 0 for any free one.
        ssl_certfile: PEM certificate (chain) to serve HTTPS with.
        ssl_keyfile: Its private key.
        log_level: uvicorn's log level.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
        log_level: str = "critical",
    ) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
            ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
            log_level=log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.host = host
        self.scheme = "https" if ssl_certfile else "http"
        self.port = port
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """``http(s)://host:port``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def __enter__(self) -> LabServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConnectorError(f"the lab server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
