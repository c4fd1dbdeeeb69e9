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
