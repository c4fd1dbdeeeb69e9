"""Building a connector from a campaign file's ``[connector]`` table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.registry import resolve


def load_connector(
    ref: str, workdir: str | Path, settings: Mapping[str, Any] | None = None
) -> Connector:
    """Build the connector named by ``ref`` on ``workdir`` with ``settings``.

    Args:
        ref: A short name (``"local"``, or one a package registers under the entry point
            group ``sciwm.connectors``) or an import path ``"package.module:Class"``.
        workdir: Directory the connector owns for the campaign, stable across restarts.
        settings: The campaign file's ``[connector.settings]``.

    Returns:
        The connector, ready to submit experiments.

    Raises:
        ConnectorError: If ``ref`` cannot be found or imported, is not a ``Connector``
            subclass, or the connector rejects its settings.
    """
    cls = resolve("sciwm.connectors", ref, ConnectorError)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConnectorError(
            f"connector {ref!r} resolves to {cls!r}, which is not a subclass of "
            "sciwm.connector.Connector; point [connector] type at a Connector class"
        )
    if getattr(cls, "__abstractmethods__", None):
        raise ConnectorError(
            f"connector {ref!r} ({cls.__qualname__}) does not implement "
            f"{sorted(cls.__abstractmethods__)}; it cannot be used as a connector"
        )
    settings = dict(settings or {})
    try:
        return cls(workdir, **settings)
    except TypeError as exc:
        raise ConnectorError(
            f"connector {ref!r} ({cls.__qualname__}) rejected its settings "
            f"{sorted(settings)}: {exc}. Fix [connector.settings] in the campaign file."
        ) from None
