"""``sciwm connectors check NAME|FILE`` and ``sciwm connectors list``.

``check`` builds a connector and asks it :meth:`sciwm.connector.Connector.check`: is the
backend reachable, are the credentials, the queue and the paths right. ``NAME`` is a
registered connector (entry point) with its default settings, optionally changed with
``--set KEY=VALUE``; ``FILE`` is a campaign file whose ``[connector]`` table is checked with
the settings the campaign would run with. The connector is built on a temporary working
directory, so a check leaves nothing behind. Exit status 0 when every finding is fine, 2
otherwise.
"""

from __future__ import annotations

import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sciwm.connector import Finding
from sciwm.errors import SciwmError, SpecError


def parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["timeout_s=5", "base_url=https://lab"]`` -> ``{"timeout_s": 5, "base_url": ...}``.

    A value is read as a TOML value (numbers, booleans, quoted strings, arrays); anything that
    is not valid TOML is taken as a plain string.

    Raises:
        SpecError: If an item has no ``=``.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {pair!r}: write it as KEY=VALUE, e.g. --set timeout_s=30")
        try:
            out[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw.strip()
    return out


def _target(target: str, settings: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """``(type, settings, what)`` for a connector name or a campaign file."""
    path = Path(target)
    if path.suffix == ".toml" or path.is_file():
        from sciwm.spec import load_spec

        spec = load_spec(path)
        merged = {"parallelism": spec.scheduler.parallelism, **spec.connector.settings}
        merged.update(settings)
        return spec.connector.type, merged, f"[connector] of {path}"
    return target, settings, f"connector {target!r}"


def findings_for(target: str, settings: dict[str, Any] | None = None) -> tuple[str, list[Finding]]:
    """Build the connector ``target`` names and check it.

    Args:
        target: A registered connector name, an import path ``pkg.mod:Class``, or a campaign
            file (``.toml``).
        settings: Settings that replace the defaults (or the campaign file's).

    Returns:
        ``(what was checked, findings)``. A connector that cannot be built gives one failed
        ``"settings"`` finding; nothing here raises for a problem of the backend.

    Raises:
        SpecError: If a campaign file is missing or invalid.
    """
    from types import SimpleNamespace

    from sciwm.registry import connector_class

    kind, merged, what = _target(target, dict(settings or {}))
    try:
        cls = connector_class(kind)
    except SciwmError as exc:
        return what, [Finding("settings", False, str(exc), "give a registered name or path")]
    what = f"{what} ({cls.__module__}:{cls.__qualname__})"
    with tempfile.TemporaryDirectory(prefix="sciwm-check-") as tmp:
        from sciwm.registry import build_connector

        try:
            connector = build_connector(SimpleNamespace(type=kind, settings=merged), tmp)
        except SciwmError as exc:
            return what, [
                Finding(
                    "settings",
                    False,
                    str(exc),
                    "fix [connector.settings] (or pass --set KEY=VALUE)",
                )
            ]
        try:
            found = [Finding("settings", True, "the connector accepts its settings")]
            found += connector.check()
        finally:
            connector.close()
    return what, found


def print_findings(what: str, findings: Sequence[Finding], out: TextIO | None = None) -> bool:
    """Print one line per finding (and its fix) to ``out`` (stdout); ``True`` when all are fine."""
    out = out or sys.stdout
    print(f"checking {what}", file=out)
    width = max((len(f.aspect) for f in findings), default=8)
    for f in findings:
        print(f"  {'ok  ' if f.ok else 'FAIL'}  {f.aspect.ljust(width)}  {f.message}", file=out)
        if not f.ok and f.fix:
            print(f"        {' ' * width}  fix: {f.fix}", file=out)
    good = all(f.ok for f in findings)
    print("all checks passed" if good else "some checks failed", file=out)
    return good


def check_command(target: str, pairs: Sequence[str] = ()) -> int:
    """``sciwm connectors check``: exit status 0 when every check passes, 2 otherwise."""
    what, findings = findings_for(target, parse_settings(pairs))
    return 0 if print_findings(what, findings) else 2


def list_command(out: TextIO | None = None) -> int:
    """``sciwm connectors list``: the registered connectors and where they live."""
    out = out or sys.stdout
    from sciwm.registry import CONNECTORS, registered

    for name, ep in sorted(registered(CONNECTORS).items()):
        print(f"  {name.ljust(14)} {ep.value}", file=out)
    return 0
