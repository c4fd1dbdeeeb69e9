"""The reference lab server: the sciwm HTTP lab protocol in front of a callable or a data set.

A lab starts from it: ``sciwm lab serve --callable mypkg.lab:run`` (or
``python -m lab_connectors.http_server ...``) serves the protocol of ``docs/http-lab.md`` on
loopback, running each experiment as ``run(**parameters)`` in its own process; ``--replay
lcdb`` answers from LCDB's recorded runs instead; ``--connector TYPE`` puts any registered
sciwm connector behind the API. The names below load on first use (FastAPI only when needed).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LabBackend": "lab_connectors.http_server.backend",
    "LabError": "lab_connectors.http_server.backend",
    "LabServer": "lab_connectors.http_server.running",
    "FaultInjector": "lab_connectors.http_server.faults",
    "create_app": "lab_connectors.http_server.app",
    "openapi_document": "lab_connectors.http_server.app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
