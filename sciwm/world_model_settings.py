"""Typed, frozen settings of a world model, read and checked once from a campaign file.

Every world model declares a frozen dataclass of its ``[world_model.settings]`` as
``settings_type``; :meth:`WorldModelSettings.from_mapping` reads the campaign file's table into
it, so an unknown key or a value of the wrong type or out of range fails when the campaign file
is loaded, before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from sciwm.errors import WorldModelError

if typing.TYPE_CHECKING:
    from sciwm.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class WorldModelSettings:
    """Base of every world model's settings (a frozen dataclass with defaults for each field).

    Subclasses add fields (each with a default) and may override :meth:`check` for ranges and
    cross-checks against the search space. ``model_name`` names the world model in errors.
    """

    model_name: ClassVar[str] = "world model"
    #: Campaign-file name of each field that is not spelt as the field.
    aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def names(cls) -> list[str]:
        """The campaign-file names of the settings."""
        return [cls.aliases.get(f.name, f.name) for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, space: SearchSpace | None = None) -> Self:
        """Read ``[world_model.settings]``.

        Args:
            raw: The table as written in the campaign file (or ``None`` for all defaults).
            space: The campaign's search space, for settings that name its parameters.

        Raises:
            WorldModelError: Naming the setting that is unknown, of the wrong type or out of
                range, and what it should be.
        """
        raw = dict(raw or {})
        names = cls.names()
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise WorldModelError(
                f"world_model.settings: unknown setting(s) {unknown} for the "
                f"{cls.model_name!r} world model; it takes {sorted(names)}"
            )
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = cls.aliases.get(f.name, f.name)
            if key in raw:
                values[f.name] = _coerce(cls.model_name, key, raw[key], hints[f.name])
        out = cls(**values)
        out.check(space)
        return out

    def check(self, space: SearchSpace | None) -> None:
        """Ranges and cross-checks; raise :class:`WorldModelError` naming the setting.

        Start the message with ``world_model.settings.KEY:`` (see :meth:`fail`), so the
        campaign file's error names the line to fix.
        """

    def check_files(self) -> None:
        """Check that the files the settings name exist; raise :class:`WorldModelError`.

        Run when a campaign file is loaded (:meth:`sciwm.world_model.WorldModel.check_settings`),
        not when a logged world model is rebuilt to answer questions: it needs its files only
        to fit, and may be asked from another working directory or machine.
        """

    def fail(self, key: str, problem: str) -> WorldModelError:
        """The error for setting ``key``: ``world_model.settings.KEY: problem (...)``.

        Usage: ``raise self.fail("min_points", f"must be at least 2, got {n}")``.
        """
        return WorldModelError(
            f"world_model.settings.{key}: {problem} (a setting of the {self.model_name!r} "
            "world model)"
        )

    def require_parameter(self, key: str, space: SearchSpace | None) -> None:
        """Check that setting ``key`` (if set) names a parameter of ``space``."""
        value = getattr(self, key)
        if value is not None and space is not None and value not in space.names:
            raise WorldModelError(
                f"world_model.settings.{key}: {value!r} is not a parameter of the campaign; "
                f"its parameters are {space.names}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings under their campaign-file names (JSON-able)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[self.aliases.get(f.name, f.name)] = str(v) if isinstance(v, Path) else v
        return out


def _coerce(model: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` as type ``hint`` (``int``, ``float``, ``str``, ``bool``, ``Path``, optionals,
    ``list``/``dict``); anything else is passed through unchanged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(model, key, value, option)
            except WorldModelError as exc:
                errors.append(str(exc))
        raise WorldModelError(errors[0] if errors else f"world_model.settings.{key}: bad value")

    def bad(problem: str) -> WorldModelError:
        return WorldModelError(
            f"world_model.settings.{key}: {problem} (a setting of the {model!r} world model)"
        )

    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad(f"must be true or false, got {value!r}")
    if hint is int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise bad(f"must be a whole number, got {value!r}")
        if value != int(value):
            raise bad(f"must be a whole number, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise bad(f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad(f"must be a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str | Path):
            raise bad(f"must be a path (a string), got {value!r}")
        return Path(value)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise bad(f"must be a list, got {value!r}")
        return tuple(value) if (origin or hint) is tuple else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise bad(f"must be a table, got {value!r}")
        return dict(value)
    return value


__all__ = ["WorldModelSettings"]
