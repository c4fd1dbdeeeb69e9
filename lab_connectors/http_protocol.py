"""The sciwm HTTP lab protocol, version 1: the JSON bodies, as pydantic models.

Both ends use these models: the reference server (:mod:`lab_connectors.http_server`) to
describe its API (the OpenAPI file ``docs/http_lab_openapi.json`` is generated from them) and
the connector (:mod:`lab_connectors.http_lab`) to validate every reply strictly. The protocol
is described for lab authors in ``docs/http-lab.md``.

Every path is under ``/v1``; ids are the experiment ids sciwm makes (the idempotency key).
"""

from __future__ import annotations

import ipaddress
import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Name and version of the protocol, reported by ``GET /v1/health``.
PROTOCOL = "sciwm-lab/1"
#: Prefix of every path.
PREFIX = "/v1"
#: Pattern of an experiment id (what :func:`sciwm.experiment.experiment_id` makes, and more).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LabStatus(StrEnum):
    """Where an experiment is in the lab."""

    QUEUED = "queued"  # accepted, waiting for a free slot
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the experiment will not change any more."""
        return self in (LabStatus.COMPLETED, LabStatus.FAILED, LabStatus.CANCELLED)


class _Body(BaseModel):
    """Replies: strict types; fields a later minor version may add are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class SubmitRequest(BaseModel):
    """``POST /v1/experiments``: run an experiment (idempotent by ``id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="Experiment id: the idempotency key.")
    campaign: str = Field(description="The campaign it belongs to.")
    seq: int = Field(ge=0, description="Its position in the campaign's sequence.")
    parameters: dict[str, float | int | str | bool] = Field(description="Parameter values by name.")
    max_cost: float | None = Field(
        default=None,
        ge=0,
        description="The most it may cost (the budget reserved for it); the lab stops it there.",
    )


class ExperimentState(_Body):
    """Reply of submit, status and cancel: where an experiment is."""

    id: str = Field(pattern=ID_PATTERN)
    status: LabStatus
    submitted_at: float = Field(description="Unix time the lab first accepted it.")


class Result(_Body):
    """``GET /v1/experiments/{id}/result``: the result of a finished experiment."""

    id: str = Field(pattern=ID_PATTERN)
    status: LabStatus
    outcomes: dict[str, float] = Field(default_factory=dict, description="Measured outcomes.")
    cost: float | None = Field(default=None, ge=0, description="Measured cost (>= 0).")
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = Field(default=None, description="What went wrong, when it failed.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("status")
    @classmethod
    def _finished(cls, v: LabStatus) -> LabStatus:
        if not v.finished:
            raise ValueError(f"a result must have a finished status, not {v.value!r}")
        return v

    @field_validator("outcomes")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, x in v.items() if not math.isfinite(x))
        if bad:
            raise ValueError(f"non-finite outcome(s) {bad}")
        return v


class Capacity(_Body):
    """``GET /v1/capacity``: how many more experiments the lab runs at once right now."""

    free: int = Field(ge=0, description="Experiments the lab would start now.")
    total: int = Field(ge=0, description="Experiments it runs at once when idle.")
    running: int = Field(ge=0, description="Experiments running now.")
    queued: int = Field(default=0, ge=0, description="Experiments waiting for a slot.")


class Health(_Body):
    """``GET /v1/health`` (no token needed): the lab is up and speaks this protocol."""

    status: str = Field(description='"ok" when the lab accepts experiments.')
    protocol: str = Field(description=f'The protocol and its version, "{PROTOCOL}".')
    lab: str = Field(default="", description="The lab's name, for messages.")


class ErrorBody(_Body):
    """The body of every 4xx/5xx reply."""

    detail: Any = Field(description="What was wrong, in words (or a list of field errors).")
