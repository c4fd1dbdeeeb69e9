"""The ``sciwm serve`` command's options and its run."""

from __future__ import annotations

import argparse
from pathlib import Path

from sciwm.serve.settings import TOKEN_ENV, ServeSettings, read_token


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``sciwm serve`` to its sub-parser."""
    d = ServeSettings()
    p.add_argument("--host", default=d.host, help=f"bind address (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"TCP port (default {d.port})")
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the bearer token (default: ${TOKEN_ENV}); needed beyond loopback",
    )
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="most candidates per request")
    p.add_argument(
        "--max-body-bytes", type=int, default=d.max_body_bytes, help="largest request body"
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages of this origin to call the API (default: none, CORS off)",
    )
    p.add_argument(
        "--reload-check-s",
        type=float,
        default=d.reload_check_s,
        help="seconds between checks for a newer world model",
    )


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The service's settings from the parsed command line (and the environment's token).

    Raises:
        SciwmError: If a setting is invalid or a non-loopback address has no token.
    """
    return ServeSettings(
        host=args.host,
        port=args.port,
        token=read_token(args.token_file),
        tracking_uri=args.tracking_uri,
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        cors_origins=tuple(args.cors_origin),
        reload_check_s=args.reload_check_s,
    )


def run_serve(args: argparse.Namespace) -> int:
    """``sciwm serve``: run the service until interrupted; returns 0."""
    from sciwm.serve import serve

    serve(settings_from_args(args))
    return 0
