"""The settings of ``sciwm serve``: where it listens, who may ask, and how much at once."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from sciwm.errors import SciwmError

#: Environment variable holding the bearer token.
TOKEN_ENV = "SCIWM_SERVE_TOKEN"

#: Shortest token accepted (characters).
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ServeSettings:
    """How the prediction service listens and what it accepts.

    Attributes:
        host: Bind address; loopback by default. Any other address needs ``token``.
        port: TCP port.
        token: Bearer token every ``/api`` request but ``/api/health`` must carry
            (``Authorization: Bearer <token>``); ``None``: none asked (loopback only).
            Never printed: it is left out of ``repr``.
        tracking_uri: The MLflow store (``None``: ``$MLFLOW_TRACKING_URI``, else
            ``sqlite:///./mlflow.db``).
        max_body_bytes: Largest request body accepted.
        max_batch: Most candidates in one predict or rank request.
        cors_origins: Origins allowed to call the API from a browser page of theirs; empty
            (the default): CORS off, only the service's own page may.
        reload_check_s: Seconds between checks for a newer world model of a campaign.

    Raises:
        SciwmError: If a setting is out of range, or a non-loopback ``host`` has no token.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = field(default=None, repr=False)
    tracking_uri: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch: int = 10_000
    cors_origins: tuple[str, ...] = ()
    reload_check_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SciwmError(f"--port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise SciwmError(f"--max-body-bytes must be at least 1024, got {self.max_body_bytes}")
        if self.max_batch < 1:
            raise SciwmError(f"--max-batch must be at least 1, got {self.max_batch}")
        if self.reload_check_s < 0:
            raise SciwmError(f"--reload-check-s must be >= 0, got {self.reload_check_s}")
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise SciwmError(
                f"the bearer token is too short (under {MIN_TOKEN_LENGTH} characters); make "
                "one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if self.token is None and not is_loopback(self.host):
            raise SciwmError(
                f"--host {self.host} is not a loopback address, so the service needs a bearer "
                f"token: set {TOKEN_ENV} or pass --token-file FILE (a file holding the token), "
                "or bind to 127.0.0.1"
            )

    @property
    def url(self) -> str:
        """The service's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address of the loopback range."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the contents of ``token_file`` (stripped), else ``$SCIWM_SERVE_TOKEN``.

    Raises:
        SciwmError: If the file cannot be read or is empty (its contents are never shown).
    """
    if token_file is not None:
        try:
            text = Path(token_file).read_text().strip()
        except OSError as exc:
            raise SciwmError(
                f"cannot read the token file {token_file}: {exc.strerror}; check its path and "
                "permissions"
            ) from None
        if not text:
            raise SciwmError(f"the token file {token_file} is empty; put the token in it")
        return text
    return os.environ.get(TOKEN_ENV) or None
