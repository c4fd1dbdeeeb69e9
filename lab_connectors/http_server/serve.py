"""``sciwm lab serve``: start the reference lab server.

Examples::

    sciwm lab serve --callable mypkg.lab:run --parallelism 4
    LAB_TOKEN=... sciwm lab serve --replay lcdb --token-env LAB_TOKEN \\
        --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    python -m lab_connectors.http_server --openapi > docs/http_lab_openapi.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab_connectors.http_protocol import is_loopback
from lab_connectors.http_server.backend import LabBackend
from sciwm.errors import ConnectorError, SciwmError

#: Port the server listens on unless told otherwise.
DEFAULT_PORT = 8750


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sciwm lab serve``."""
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--callable", metavar="PKG.MOD:FN", help="run fn(**parameters) per experiment"
    )
    what.add_argument("--replay", metavar="DATA", help="answer from 'lcdb' or a CSV of runs")
    what.add_argument("--connector", metavar="TYPE", help="any registered sciwm connector")
    p.add_argument(
        "--set", dest="settings", action="append", default=[], metavar="K=V",
        help="a setting of the connector behind the lab (e.g. timeout_s=600)",
    )  # fmt: skip
    p.add_argument("--parallelism", type=int, default=1, help="experiments run at once")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--state-dir", type=Path, default=Path("sciwm-lab"), help="the lab's records")
    p.add_argument("--token-env", metavar="NAME", help="environment variable holding the token")
    p.add_argument("--no-auth", action="store_true", help="accept requests without a token")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", type=Path, help="its PEM private key")
    p.add_argument("--name", default="sciwm reference lab", help="the lab's name in /v1/health")
    p.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    p.add_argument(
        "--inject-faults", type=float, default=0.0, metavar="RATE",
        help="for testing clients: this fraction of requests meets a fault (503, 502, a slow "
        "reply, a dropped connection, a malformed body)",
    )  # fmt: skip
    p.add_argument("--fault-seed", type=int, default=0, help="seed of the injected faults")
    p.add_argument("--fault-slow-s", type=float, default=2.0, help="delay of a slow reply")


def build_backend(args: argparse.Namespace) -> LabBackend:
    """The backend the options describe.

    Raises:
        ConnectorError: If no backend is named or the connector refuses its settings.
    """
    from types import SimpleNamespace

    from sciwm.cli_connectors import parse_settings
    from sciwm.registry import build_connector

    settings: dict[str, Any] = parse_settings(args.settings)
    if args.callable:
        kind, settings = "local", {"function": args.callable, **settings}
    elif args.replay:
        kind, settings = "replay", {"data": args.replay, **settings}
    elif args.connector:
        kind = args.connector
    else:
        raise ConnectorError(
            "say what the lab runs: --callable pkg.module:function, --replay lcdb (or a CSV "
            "file of runs), or --connector TYPE"
        )
    state = Path(args.state_dir)
    connector = build_connector(
        SimpleNamespace(type=kind, settings=settings), state / "backend", {"parallelism": 1024}
    )
    return LabBackend(connector, state, args.parallelism, args.name)


def _token(args: argparse.Namespace) -> str | None:
    loopback = is_loopback(args.host)
    if args.token_env:
        token = os.environ.get(args.token_env, "")
        if not token:
            raise ConnectorError(
                f"--token-env {args.token_env}: that environment variable is not set or empty; "
                "export it with the lab's token"
            )
        return token
    if not (args.no_auth or loopback):
        raise ConnectorError(
            f"refusing to serve on {args.host} without a token: pass --token-env NAME (the "
            "variable holding the token), or --no-auth if the network is trusted"
        )
    return None


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted (or print the OpenAPI document)."""
    from lab_connectors.http_server.app import create_app, openapi_document

    if args.openapi:
        print(json.dumps(openapi_document(), indent=2, sort_keys=True))
        return 0
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConnectorError("give both --tls-cert and --tls-key (or neither)")
    token = _token(args)
    backend = build_backend(args)
    import uvicorn

    backend.start()
    scheme = "https" if args.tls_cert else "http"
    print(
        f"sciwm lab {args.name!r} on {scheme}://{args.host}:{args.port}/v1 "
        f"({args.parallelism} at once, records in {args.state_dir}, "
        f"{'bearer token required' if token else 'no token'})",
        file=sys.stderr,
    )
    app: Any = create_app(backend, token)
    injector = None
    if args.inject_faults > 0:
        from lab_connectors.http_server.faults import FaultInjector

        injector = app = FaultInjector(
            app, args.inject_faults, slow_s=args.fault_slow_s, seed=args.fault_seed
        )
        logging.getLogger("uvicorn.error").addFilter(_quiet_injected)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            ssl_certfile=None if args.tls_cert is None else str(args.tls_cert),
            ssl_keyfile=None if args.tls_key is None else str(args.tls_key),
            log_level="warning",
            access_log=False,
        )
    finally:
        backend.stop()
        if injector is not None:
            print(f"injected faults: {json.dumps(dict(injector.counts))}", file=sys.stderr)
    return 0


def _quiet_injected(record: logging.LogRecord) -> bool:
    """Leave out uvicorn's traceback of a connection dropped on purpose."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, ConnectionAbortedError) and "injected fault" in str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lab_connectors.http_server``."""
    p = argparse.ArgumentParser(prog="python -m lab_connectors.http_server")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return serve(args)
    except SciwmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
