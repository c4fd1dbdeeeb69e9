"""Project exceptions: every error a user can cause says what was wrong and how to fix it."""

from __future__ import annotations


class SciwmError(Exception):
    """Base class of every error sciwm raises on purpose.

    The CLI prints ``str(error)`` and exits with status 2, without a traceback, so the
    message must name what was wrong and how to fix it.
    """


class SpecError(SciwmError):
    """A campaign file is malformed or inconsistent."""


class ParameterError(SciwmError):
    """A parameter value is unknown, missing, of the wrong type or out of range."""


class ConnectorError(SciwmError):
    """A connector cannot be loaded, configured or reached."""


class StoreError(SciwmError):
    """The MLflow record store cannot be reached or holds inconsistent data."""


class WorldModelError(SciwmError):
    """A world model cannot be built, fitted, saved, loaded or queried."""


class BudgetError(SciwmError):
    """A budget is invalid or an action would exceed it."""


class BackendUnavailable(ConnectorError):
    """A backend is down or did not answer in time (connection refused, time-out, 502/503/504).

    Transient by nature: the campaign loop retries the call with back-off and pauses dispatch
    while it lasts, without failing experiments or spending budget. A connector raises it only
    for conditions that may clear by themselves; a wrong setting or credential is a plain
    :class:`ConnectorError`.

    Attributes:
        retry_after_s: The backend's own hint of when to try again, if it gave one.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
