"""Loading connectors and world models by short name, import path or entry point."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from sciwm.errors import SciwmError

#: Built-in short names; third parties add theirs through entry points in the same groups.
BUILTIN: dict[str, dict[str, str]] = {
    "sciwm.connectors": {
        "local": "lab_connectors.local:LocalConnector",
        "replay": "lab_connectors.replay:ReplayConnector",
        "mltrain": "lab_connectors.mltrain:MLTrainConnector",
        "openmm": "lab_connectors.openmm_md:OpenMMConnector",
    },
    "sciwm.world_models": {
        "gp": "surrogates.gp:GPWorldModel",
        "mlrun": "surrogates.mlrun.model:MLRunWorldModel",
        "md_emulator": "surrogates.md.world_model:MDEmulatorWorldModel",
    },
}


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


def resolve(group: str, ref: str, error: type[SciwmError] = SciwmError) -> Any:
    """Find a class by short name (built-in or entry point) or by import path.

    Args:
        group: ``"sciwm.connectors"`` or ``"sciwm.world_models"``.
        ref: A short name such as ``"local"`` or an import path ``"pkg.mod:Class"``.
        error: Project exception class to raise.
    """
    what = "connector" if "connector" in group else "world model"
    if ":" in ref:
        return load_object(ref, what, error)
    names = dict(BUILTIN.get(group, {}))
    for ep in entry_points(group=group):
        names.setdefault(ep.name, ep.value)
    if ref not in names:
        raise error(
            f"unknown {what} type {ref!r}; known: {sorted(names)}, "
            "or give an import path 'package.module:Class'"
        )
    return load_object(names[ref], what, error)
