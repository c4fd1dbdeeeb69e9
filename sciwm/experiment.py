"""Experiments (what to run) and observations (what came back)."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sciwm.types import Value


class Status(enum.StrEnum):
    """Lifecycle of one real experiment, as stored in the record store."""

    PROPOSED = "proposed"  # recorded, not yet confirmed submitted
    RUNNING = "running"  # submitted; the connector handle is recorded
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the experiment will not change any more."""
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of stable ids."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def experiment_id(campaign: str, seq: int, parameters: Mapping[str, Value]) -> str:
    """Stable id of the ``seq``-th experiment of a campaign.

    The same campaign, sequence number and parameters always give the same id, so a resumed
    campaign recognises what it has already submitted; it is the idempotency key of every
    connector.
    """
    digest = hashlib.sha256(canonical_json([campaign, seq, dict(parameters)]).encode())
    return f"{seq:05d}-{digest.hexdigest()[:10]}"


@dataclass(frozen=True)
class Experiment:
    """One real experiment to run.

    Attributes:
        id: Stable id; the idempotency key for connectors and the record store.
        campaign: Name of the campaign it belongs to.
        seq: Position in the campaign's sequence of proposals (0-based).
        parameters: Validated parameter values, in the space's order.
        max_cost: The most this experiment may cost (the budget reserved for it); connectors
            that measure cost as wall time stop it there. ``None`` means no cap.
    """

    id: str
    campaign: str
    seq: int
    parameters: dict[str, Value]
    max_cost: float | None = None

    @classmethod
    def create(
        cls,
        campaign: str,
        seq: int,
        parameters: Mapping[str, Value],
        max_cost: float | None = None,
    ) -> Experiment:
        """Build an experiment with its stable id."""
        params = dict(parameters)
        return cls(experiment_id(campaign, seq, params), campaign, seq, params, max_cost)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "id": self.id,
            "campaign": self.campaign,
            "seq": self.seq,
            "parameters": dict(self.parameters),
            "max_cost": self.max_cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["id"]),
            str(data["campaign"]),
            int(data["seq"]),
            dict(data["parameters"]),
            None if data.get("max_cost") is None else float(data["max_cost"]),
        )


@dataclass(frozen=True)
class Observation:
    """The result of one real experiment.

    Attributes:
        experiment_id: Id of the experiment it answers.
        status: ``COMPLETED``, ``FAILED`` or ``CANCELLED``.
        outcomes: Measured outcomes by name (empty when it failed).
        cost: Measured cost in the campaign's cost unit (wall seconds by default); failures
            cost too.
        started_at: Unix time the run started, if known.
        finished_at: Unix time the run ended, if known.
        error: What went wrong, when it failed.
        metadata: Extra JSON-serialisable facts from the backend.
    """

    experiment_id: str
    status: Status
    outcomes: dict[str, float] = field(default_factory=dict)
    cost: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the plain string form ("completed"): identity checks (``is Status.X``) and
        # ``checked`` must see the enum member.
        object.__setattr__(self, "status", Status(self.status))

    @classmethod
    def failed(
        cls, experiment_id: str, error: str, cost: float | None = None, **kwargs: Any
    ) -> Observation:
        """A failed observation carrying its error text."""
        return cls(experiment_id, Status.FAILED, {}, cost, error=error, **kwargs)

    def checked(self, required: list[str]) -> Observation:
        """Turn a completed observation with missing or non-finite outcomes into a failure.

        Args:
            required: Outcome names the campaign needs.

        Returns:
            ``self`` when all is well (a copy with ``float`` values where a backend reported
            numbers in another form, e.g. strings), otherwise a ``FAILED`` copy that says what
            was wrong.
        """
        if self.status is not Status.COMPLETED:
            return self
        missing = [n for n in required if n not in self.outcomes]
        bad = [n for n, v in self.outcomes.items() if not _finite(v)]
        if missing or bad:
            parts = []
            if missing:
                parts.append(f"missing outcome(s) {missing} (got {sorted(self.outcomes)})")
            if bad:
                parts.append(
                    "non-finite outcome(s) " + ", ".join(f"{n}={self.outcomes[n]!r}" for n in bad)
                )
            return Observation(
                self.experiment_id,
                Status.FAILED,
                {n: float(v) for n, v in self.outcomes.items() if _finite(v)},
                self.cost,
                self.started_at,
                self.finished_at,
                "; ".join(parts),
                dict(self.metadata),
            )
        if any(type(v) is not float for v in self.outcomes.values()):
            return replace(self, outcomes={n: float(v) for n, v in self.outcomes.items()})
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "experiment_id": self.experiment_id,
            "status": self.status.value,
            "outcomes": dict(self.outcomes),
            "cost": self.cost,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["experiment_id"]),
            Status(data["status"]),
            {k: float(v) for k, v in (data.get("outcomes") or {}).items()},
            None if data.get("cost") is None else float(data["cost"]),
            data.get("started_at"),
            data.get("finished_at"),
            data.get("error"),
            dict(data.get("metadata") or {}),
        )


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
