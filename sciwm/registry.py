"""The one registry of connectors and world models, and the checked factory that builds them.

Connectors are registered as entry points in the group ``sciwm.connectors`` and world models in
``sciwm.world_models``: sciwm's own in its ``pyproject.toml``, a third party's in theirs
(installing the package registers them). A campaign file names one by its entry-point name
(``type = "gp"``) or by an import path ``"package.module:Class"``.

:func:`build_world_model` and :func:`build_connector` are the one way to build either from a
campaign file: a name or path that does not lead to a usable class fails with a project error
that says which step went wrong (unknown name, broken entry point, module missing, attribute
missing, not a subclass of the contract, abstract methods left) and how to fix it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sciwm.errors import ConnectorError, SciwmError, WorldModelError

if TYPE_CHECKING:
    from sciwm.connector import Connector
    from sciwm.space import SearchSpace
    from sciwm.world_model import WorldModel

#: Entry-point group of connectors.
CONNECTORS = "sciwm.connectors"
#: Entry-point group of world models.
WORLD_MODELS = "sciwm.world_models"

_WHAT = {CONNECTORS: "connector", WORLD_MODELS: "world model"}
_ERROR: dict[str, type[SciwmError]] = {CONNECTORS: ConnectorError, WORLD_MODELS: WorldModelError}


class TypedPart(Protocol):
    """A campaign file's ``[connector]`` or ``[world_model]`` table: a type and its settings."""

    @property
    def type(self) -> str: ...

    @property
    def settings(self) -> Mapping[str, Any]: ...


def load_object(ref: str, what: str = "object", error: type[SciwmError] = SciwmError) -> Any:
    """Import ``package.module:attribute``.

    Args:
        ref: Import path with a colon before the attribute (dots allowed after it).
        what: What is being loaded, for the error message.
        error: Project exception class to raise.

    Raises:
        error: If the path is malformed, the module cannot be imported or lacks the attribute.
    """
    module_name, sep, attr = str(ref).strip().partition(":")
    if not sep or not module_name or not attr or ":" in attr:
        raise error(f"{what} {ref!r} is not an import path; write it as 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(
            f"cannot import module {module_name!r} for {what} {ref!r}: {exc}. "
            "Check the spelling and that the package is installed in this environment "
            "(or on PYTHONPATH)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any import-time crash of user code
        raise error(
            f"importing module {module_name!r} for {what} {ref!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise error(
                f"module {module_name!r} has no attribute {attr!r} (for {what} {ref!r})"
            ) from None
    return obj


def registered(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` (``CONNECTORS`` or ``WORLD_MODELS``) by name."""
    out: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        out.setdefault(ep.name, ep)
    return out


def resolve(group: str, ref: str) -> type:
    """The class a campaign file's ``type`` names, checked against the group's contract.

    Args:
        group: ``CONNECTORS`` or ``WORLD_MODELS``.
        ref: An entry-point name such as ``"gp"`` or an import path ``"pkg.mod:Class"``.

    Returns:
        A concrete subclass of :class:`~sciwm.connector.Connector` or
        :class:`~sciwm.world_model.WorldModel`.

    Raises:
        ConnectorError: For a connector that cannot be found, imported or used.
        WorldModelError: Likewise for a world model.
    """
    if group not in _WHAT:
        raise SciwmError(f"unknown registry group {group!r}; use {sorted(_WHAT)}")
    what, error = _WHAT[group], _ERROR[group]
    ref = str(ref).strip()
    if ":" in ref:
        obj = load_object(ref, what, error)
        origin = f"{what} {ref!r}"
    else:
        known = registered(group)
        if ref not in known:
            hint = (
                ""
                if known
                else " (no entry points are registered at all: install the package, e.g. "
                "`pip install -e .` or `make setup`)"
            )
            raise error(
                f"unknown {what} type {ref!r}; known: {sorted(known)}{hint}, or give an import "
                "path 'package.module:Class'"
            )
        ep = known[ref]
        dist = getattr(ep, "dist", None)
        source = f" of {dist.name}" if dist is not None else ""
        origin = f"{what} {ref!r} (entry point {ep.value!r} in group {group}{source})"
        try:
            obj = load_object(ep.value, what, error)
        except SciwmError as exc:
            raise error(
                f"the entry point {ref!r} in group {group}{source} is broken: "
                f"{str(exc).rstrip('.')}. "
                "Reinstall the package that registers it (`pip install -e .` for sciwm's own)."
            ) from None
    return _checked_class(obj, group, origin)


def _checked_class(obj: Any, group: str, origin: str) -> type:
    base: type
    if group == CONNECTORS:  # building a connector must not pay for importing torch
        from sciwm.connector import Connector

        base = Connector
    else:
        from sciwm.world_model import WorldModel

        base = WorldModel

    error = _ERROR[group]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise error(
            f"{origin} is {obj!r}, which is not a subclass of "
            f"{base.__module__}.{base.__qualname__}; point it at a {base.__name__} class"
        )
    missing = sorted(getattr(obj, "__abstractmethods__", ()) or ())
    if missing:
        raise error(
            f"{origin} ({obj.__qualname__}) does not implement {missing}; "
            f"it cannot be used as a {_WHAT[group]}"
        )
    return obj


def world_model_class(ref: str) -> type[WorldModel]:
    """The world-model class ``ref`` names (entry-point name or import path), checked."""
    return resolve(WORLD_MODELS, ref)  # type: ignore[return-value]


def connector_class(ref: str) -> type[Connector]:
    """The connector class ``ref`` names (entry-point name or import path), checked."""
    return resolve(CONNECTORS, ref)  # type: ignore[return-value]


def build_world_model(
    spec_part: TypedPart, space: SearchSpace, outcomes: Sequence[str]
) -> WorldModel:
    """Build the (unfitted) world model of a campaign file's ``[world_model]`` table.

    Args:
        spec_part: The table: ``type`` and ``settings``.
        space: The campaign's search space.
        outcomes: Outcome names, the objective first.

    Raises:
        WorldModelError: If the type does not lead to a usable class or the class rejects
            its settings.
    """
    cls = world_model_class(spec_part.type)
    settings = dict(spec_part.settings)
    try:
        return cls(space, list(outcomes), **settings)
    except TypeError as exc:
        raise WorldModelError(
            f"world model {spec_part.type!r} ({cls.__qualname__}) rejected its settings "
            f"{sorted(settings)}: {exc}. Fix [world_model.settings] in the campaign file."
        ) from None


def build_connector(
    spec_part: TypedPart,
    workdir: str | Path,
    defaults: Mapping[str, Any] | None = None,
) -> Connector:
    """Build the connector of a campaign file's ``[connector]`` table on ``workdir``.

    Args:
        spec_part: The table: ``type`` and ``settings``.
        workdir: Directory the connector owns for the campaign, stable across restarts.
        defaults: Settings that apply where the table leaves them out (the loop passes the
            campaign's ``parallelism``).

    Raises:
        ConnectorError: If the type does not lead to a usable class or the connector rejects
            its settings.
    """
    cls = connector_class(spec_part.type)
    settings = {**dict(defaults or {}), **dict(spec_part.settings)}
    try:
        return cls(workdir, **settings)
    except TypeError as exc:
        raise ConnectorError(
            f"connector {spec_part.type!r} ({cls.__qualname__}) rejected its settings "
            f"{sorted(settings)}: {exc}. Fix [connector.settings] in the campaign file."
        ) from None


__all__ = [
    "CONNECTORS",
    "WORLD_MODELS",
    "build_connector",
    "build_world_model",
    "connector_class",
    "load_object",
    "registered",
    "resolve",
    "world_model_class",
]
