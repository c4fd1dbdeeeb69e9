"""The HTTP lab connector: a lab automation system that speaks the sciwm HTTP lab protocol.

The protocol (``docs/http-lab.md``, ``docs/http_lab_openapi.json``) has five calls: submit an
experiment (idempotent by its id), its status, its result, cancel it, and the lab's capacity.
This connector speaks it with

- a bearer token read from the environment variable that ``token_env`` names (never logged,
  stored or echoed);
- TLS verification always on, against the system's CA certificates or ``ca_bundle``; plain
  ``http://`` only to a loopback host unless ``allow_http = true``;
- a time-out per call and retries with exponential back-off (with jitter) on transient
  errors: connection refused or dropped, time-outs, 502/503/504 and 429 (whose
  ``Retry-After`` it honours), and replies that do not parse; every call is idempotent, so a
  retried submit never makes a second job;
- strict validation of every reply (:mod:`lab_connectors.http_protocol`): a reply that does
  not follow the protocol is an error naming the call, what was expected and what came back.

When retries run out on a transient error it raises :class:`sciwm.errors.BackendUnavailable`
(the campaign pauses dispatch); a refused token, a rejected request or a protocol violation is
a plain :class:`sciwm.errors.ConnectorError`.
"""

from __future__ import annotations

import math
import os
import random
import ssl
import time
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab_connectors.http_protocol import (
    PREFIX,
    PROTOCOL,
    Capacity,
    ExperimentState,
    Health,
    LabStatus,
    Result,
    is_loopback,
)
from sciwm.connector import Connector, Finding, Handle
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Experiment, Observation, Status

M = TypeVar("M", bound=BaseModel)

#: Statuses that mean "try again later".
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


class HTTPLabSettings(BaseModel):
    """``[connector.settings]`` of ``type = "http"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The lab's base URL, e.g. 'https://lab.example.org:8750'.")
    token_env: str | None = Field(
        default=None, description="Name of the environment variable holding the bearer token."
    )
    ca_bundle: str | None = Field(
        default=None, description="PEM file of the CA certificate(s) the lab's TLS chain ends in."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Time-out of one HTTP call.")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Time-out to connect.")
    retries: int = Field(default=4, ge=0, le=20, description="Retries of a transient failure.")
    backoff_s: float = Field(default=0.25, ge=0, description="First back-off delay.")
    max_backoff_s: float = Field(default=8.0, ge=0, description="Longest back-off delay.")
    parallelism: int = Field(default=1024, ge=1, description="Most experiments sciwm runs here.")
    allow_http: bool = Field(default=False, description="Allow http:// to a non-loopback host.")


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Malformed(Exception):
    """A reply that does not follow the protocol (retried, then reported)."""


class HTTPLabConnector(Connector):
    """Runs experiments on a lab that serves the sciwm HTTP lab protocol.

    Args:
        workdir: The connector's folder (unused: the lab keeps the state).
        **settings: :class:`HTTPLabSettings`.

    Raises:
        ConnectorError: For a malformed setting, a missing token variable or CA file, or
            plain HTTP to a non-loopback host without ``allow_http``.
    """

    name: ClassVar[str] = "http"

    def __init__(self, workdir: str | Path, **settings: Any) -> None:
        try:
            cfg = HTTPLabSettings(**settings)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg']}" for e in exc.errors()
            )
            raise ConnectorError(
                f"http connector settings are invalid: {problems}. Known settings: "
                f"{sorted(HTTPLabSettings.model_fields)}; fix [connector.settings]."
            ) from None
        super().__init__(workdir, **cfg.model_dump())
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.where = redact(self.url)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectorError(
                f"http connector url={self.where!r} is not an http(s) URL; give e.g. "
                "url = 'https://lab.example.org:8750'"
            )
        if parts.username or parts.password:
            raise ConnectorError(
                f"http connector url={self.where!r} carries credentials; put the token in an "
                "environment variable and name it with token_env instead"
            )
        if parts.scheme == "http" and not (is_loopback(parts.hostname) or cfg.allow_http):
            raise ConnectorError(
                f"refusing plain http:// to {parts.hostname}, which is not loopback: the token "
                "and results would cross the network unencrypted. Use https://, or set "
                "allow_http = true if the network is trusted."
            )
        self._headers = {"Accept": "application/json"}
        if cfg.token_env is not None:
            token = os.environ.get(cfg.token_env, "")
            if not token:
                raise ConnectorError(
                    f"the http connector reads its token from the environment variable "
                    f"{cfg.token_env!r} (token_env), which is not set or empty; export the "
                    "lab's token in it"
                )
            self._headers["Authorization"] = f"Bearer {token}"
        self._client = self._make_client()

    def _make_client(self) -> Any:
        import httpx

        verify: Any = True
        if self.cfg.ca_bundle is not None:
            path = Path(self.cfg.ca_bundle).expanduser()
            if not path.is_file():
                raise ConnectorError(
                    f"http connector ca_bundle={str(path)!r} does not exist; give the PEM file "
                    "of the CA that signed the lab's certificate"
                )
            try:
                verify = ssl.create_default_context(cafile=str(path))
            except (ssl.SSLError, ValueError) as exc:
                raise ConnectorError(
                    f"http connector ca_bundle={str(path)!r} is not a PEM CA file: {exc}"
                ) from None
        timeout = httpx.Timeout(self.cfg.timeout_s, connect=self.cfg.connect_timeout_s)
        return httpx.Client(base_url=self.url, verify=verify, timeout=timeout, trust_env=False)

    # -- the contract ------------------------------------------------------------------------
    def submit(self, experiment: Experiment) -> Handle:
        """Submit ``experiment``; the lab starts nothing new for an id it knows."""
        body = {
            "id": experiment.id,
            "campaign": experiment.campaign,
            "seq": experiment.seq,
            "parameters": dict(experiment.parameters),
            "max_cost": experiment.max_cost,
        }
        state = self._call("POST", "/experiments", ExperimentState, json=body, ok=(200, 201))
        self._same_id(state.id, experiment.id, "POST /v1/experiments")
        return self._handle(experiment.id)

    def poll(self, handle: Handle) -> Status:
        """``RUNNING`` while the lab has it queued or running, else its final status."""
        exp_id = self._id(handle)
        state = self._call("GET", f"/experiments/{quote(exp_id)}", ExperimentState)
        self._same_id(state.id, exp_id, f"GET /v1/experiments/{exp_id}")
        return Status.RUNNING if not state.status.finished else Status(state.status.value)

    def fetch(self, handle: Handle) -> Observation:
        """The lab's result of a finished experiment."""
        exp_id = self._id(handle)
        res = self._call("GET", f"/experiments/{quote(exp_id)}/result", Result)
        self._same_id(res.id, exp_id, f"GET /v1/experiments/{exp_id}/result")
        error = res.error
        if res.status is LabStatus.CANCELLED and error is None:
            error = "cancelled"
        return Observation(
            exp_id,
            Status(res.status.value),
            dict(res.outcomes) if res.status is LabStatus.COMPLETED else {},
            res.cost,
            res.started_at,
            res.finished_at,
            error,
            {**res.metadata, "lab": self.where},
        )

    def cancel(self, handle: Handle) -> None:
        """Ask the lab to stop the experiment; a finished one is left as it is."""
        exp_id = self._id(handle)
        self._call("POST", f"/experiments/{quote(exp_id)}/cancel", ExperimentState)

    def capacity(self) -> int:
        """The lab's free slots (at most ``parallelism``)."""
        cap = self._call("GET", "/capacity", Capacity)
        return min(cap.free, self.cfg.parallelism)

    def check(self) -> list[Finding]:
        """Reachable (``/v1/health``), the protocol's version, TLS, and the token."""
        found: list[Finding] = []
        try:
            health = self._call("GET", "/health", Health, retries=0)
        except ConnectorError as exc:
            fix = (
                "set ca_bundle to the PEM file of the CA that signed the lab's certificate"
                if "certificate" in str(exc)
                else "start the lab, or correct url in [connector.settings]"
            )
            return [Finding("reachable", False, str(exc), fix)]
        found.append(Finding("reachable", True, f"{self.where} answers ({health.lab or 'lab'})"))
        if health.protocol != PROTOCOL:
            found.append(
                Finding(
                    "protocol",
                    False,
                    f"the lab speaks {health.protocol!r}; this sciwm speaks {PROTOCOL!r}",
                    "upgrade the lab's server or sciwm so that they match",
                )
            )
        if self.url.startswith("https://"):
            found.append(Finding("tls", True, "the lab's certificate was verified"))
        try:
            free = self.capacity()
        except ConnectorError as exc:
            fix = (
                f"put the lab's token in ${self.cfg.token_env}"
                if self.cfg.token_env
                else "name the variable holding the lab's token with token_env"
            )
            found.append(Finding("credentials", False, str(exc), fix))
        else:
            who = f"the token from ${self.cfg.token_env}" if self.cfg.token_env else "no token"
            found.append(Finding("credentials", True, f"accepted ({who}); {free} slot(s) free"))
        return found

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # -- helpers -------------------------------------------------------------------------------
    def _handle(self, experiment_id: str) -> Handle:
        return {"connector": "http", "lab": self.where, "experiment_id": experiment_id}

    @staticmethod
    def _id(handle: Handle) -> str:
        exp_id = handle.get("experiment_id") if isinstance(handle, dict) else None
        if not isinstance(exp_id, str) or not exp_id:
            raise ConnectorError(
                f"{handle!r} is not an http connector handle (it needs experiment_id); pass "
                "the handle that submit returned"
            )
        return exp_id

    def _same_id(self, got: str, wanted: str, call: str) -> None:
        if got != wanted:
            raise ConnectorError(
                f"the lab at {self.where} answered {call} about experiment {got!r}, not "
                f"{wanted!r}; the lab does not follow the protocol"
            )

    def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
        retries: int | None = None,
    ) -> M:
        """One protocol call, retried on transient failures, its reply validated by ``model``.

        Raises:
            BackendUnavailable: When retries run out on connection errors, time-outs or
                502/503/504/429.
            ConnectorError: For a refused token, a rejected request, or a reply that still
                does not follow the protocol after the retries.
        """
        import httpx

        call = f"{method} {PREFIX}{path}"
        tries = 1 + (self.cfg.retries if retries is None else retries)
        last = ""
        malformed = False
        for attempt in range(tries):
            wait = None
            try:
                resp = self._client.request(method, PREFIX + path, json=json, headers=self._headers)
            except httpx.TimeoutException as exc:
                last, malformed = f"timed out ({type(exc).__name__})", False
            except httpx.TransportError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
                    getattr(exc, "__context__", None), ssl.SSLCertVerificationError
                ):
                    raise ConnectorError(
                        f"the lab at {self.where} presented a TLS certificate that does not "
                        f"verify ({_first_line(exc)}); set ca_bundle to the PEM file of the CA "
                        "that signed it"
                    ) from None
                last, malformed = f"{type(exc).__name__}: {_first_line(exc)}", False
            else:
                if resp.status_code in TRANSIENT_STATUS:
                    last, malformed = f"HTTP {resp.status_code}", False
                    wait = _retry_after(resp.headers.get("Retry-After"))
                elif resp.status_code in ok:
                    try:
                        return model.model_validate_json(resp.content)
                    except ValidationError as exc:
                        last, malformed = (
                            f"a reply that is not a valid {model.__name__} "
                            f"({_errors(exc)}); it began {resp.text[:120]!r}",
                            True,
                        )
                else:
                    self._refused(call, resp)
            if attempt + 1 < tries:
                delay = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2**attempt)
                delay *= random.uniform(0.5, 1.0)
                time.sleep(delay if wait is None else min(wait, self.cfg.max_backoff_s))
        if malformed:
            raise ConnectorError(
                f"the lab at {self.where} answered {call} with {last} (after {tries} "
                "attempts); it does not follow the sciwm HTTP lab protocol (docs/http-lab.md)"
            )
        raise BackendUnavailable(
            f"the lab at {self.where} is unavailable: {call} failed {tries} time(s), last "
            f"with {last}. Check that the lab is up and reachable; the campaign waits and "
            "retries."
        )

    def _refused(self, call: str, resp: Any) -> None:
        """Raise the error of a non-transient, non-OK reply."""
        detail = _detail(resp)
        if resp.status_code in (401, 403):
            how = (
                f"check the token in ${self.cfg.token_env}"
                if self.cfg.token_env
                else "this lab needs a token: name the variable holding it with token_env"
            )
            raise ConnectorError(
                f"the lab at {self.where} refused the credentials (HTTP {resp.status_code} on "
                f"{call}: {detail}); {how}"
            )
        raise ConnectorError(
            f"the lab at {self.where} rejected {call} with HTTP {resp.status_code}: {detail}"
        )


def _detail(resp: Any) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else resp.text
    return text[:300] or "(empty reply)"


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3]
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
