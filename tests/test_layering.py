"""The layering of the five packages, read from the imports of every module.

Dependencies point one way: ``flows`` -> ``scheduler`` / ``surrogates`` / ``lab_connectors`` ->
``sciwm``. ``scheduler``, ``surrogates`` and ``lab_connectors`` import only ``sciwm`` and
themselves (a surrogate never a connector, a connector never a surrogate, the scheduler
neither), ``sciwm`` only itself, and no package imports ``tests``. The front doors of ``sciwm``
(the CLI, the benchmarks, the service and the public API) sit above every layer and may import
anything. No module imports another package's private (``_name``) module.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, relative ones.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("sciwm", "surrogates", "scheduler", "lab_connectors", "flows")

#: First-party top-level packages each layer may import.
ALLOWED: dict[str, frozenset[str]] = {
    "sciwm": frozenset({"sciwm"}),
    "surrogates": frozenset({"sciwm", "surrogates"}),
    "scheduler": frozenset({"sciwm", "scheduler"}),
    "lab_connectors": frozenset({"sciwm", "lab_connectors"}),
    "flows": frozenset(PACKAGES),
}

#: First-party names an import may point at (``tests`` is not installed: no package uses it).
FIRST_PARTY = frozenset({*PACKAGES, "tests"})


def is_front_door(path: str) -> bool:
    """Whether the module at ``path`` (relative, with ``/``) may import every layer.

    The front doors: ``sciwm/cli.py``, everything under ``sciwm/bench/``, and the service and
    public API (``sciwm/serve*``, ``sciwm/api*``, module or package).
    """
    return (
        path == "sciwm/cli.py"
        or path.startswith("sciwm/bench/")
        or path.startswith(("sciwm/serve", "sciwm/api"))
    )


def module_name(path: str) -> str:
    """``sciwm/md/engine.py`` -> ``sciwm.md.engine``; a package's ``__init__`` is the package."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(path: str) -> str:
    """The package a module belongs to (itself for an ``__init__``)."""
    name = module_name(path)
    return name if path.endswith("__init__.py") else name.rpartition(".")[0]


def _is_module_on_disk(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(
    path: str, tree: ast.AST, is_module: Callable[[str], bool] = _is_module_on_disk
) -> list[tuple[ast.stmt, str]]:
    """Every ``(statement, dotted module)`` an import in ``tree`` loads.

    ``from pkg import name`` loads ``pkg``, and also ``pkg.name`` when that is a module.
    Relative imports are resolved against the module at ``path``.
    """
    out: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.append((node, target))
            for alias in node.names:
                if alias.name != "*" and is_module(f"{target}.{alias.name}"):
                    out.append((node, f"{target}.{alias.name}"))
    return out


def _private_owner(dotted: str) -> str | None:
    """The package owning the first private (``_name``) module on the path, or ``None``."""
    parts = dotted.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def violations(
    path: str, source: str, is_module: Callable[[str], bool] = _is_module_on_disk
) -> list[str]:
    """``path:line import`` for each import of the module at ``path`` that breaks the layering.

    Args:
        path: The module's path relative to the repository root, with ``/``.
        source: Its text.
        is_module: Whether a dotted name is a module (for ``from pkg import _name``).
    """
    layer = path.split("/")[0]
    tree = ast.parse(source, filename=path)
    importer_package = _package_of(path)
    found: dict[tuple[int, str], str] = {}
    for node, target in imported_modules(path, tree, is_module):
        top = target.split(".")[0]
        if top not in FIRST_PARTY:
            continue
        statement = ast.unparse(node)
        where = f"{path}:{node.lineno} {statement}"
        if not is_front_door(path) and top not in ALLOWED.get(layer, frozenset()):
            found[(node.lineno, statement)] = f"{where}  ({layer} may not import {top})"
        owner = _private_owner(target)
        if owner is not None and not (
            importer_package == owner or importer_package.startswith(owner + ".")
        ):
            found.setdefault(
                (node.lineno, statement),
                f"{where}  (private module of {owner}, imported from {importer_package})",
            )
    return [found[k] for k in sorted(found)]


def project_modules() -> list[Path]:
    """Every ``.py`` file of the five packages."""
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


# -- the project ---------------------------------------------------------------------------------
def test_imports_follow_the_layers() -> None:
    found = []
    for file in project_modules():
        rel = file.relative_to(ROOT).as_posix()
        found.extend(violations(rel, file.read_text()))
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_every_package_is_scanned() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in project_modules()}
    for pkg in PACKAGES:
        assert f"{pkg}/__init__.py" in files
    assert len(files) > 50  # the whole tree, not an empty glob


# -- the checker itself, on synthetic modules ----------------------------------------------------
MODULES = {"lab_connectors._md_worker", "lab_connectors._local_worker", "surrogates.mlrun._x"}


def _check(path: str, source: str) -> list[str]:
    return violations(path, source, is_module=lambda name: name in MODULES)


def test_checker_flags_an_upward_or_sideways_import_with_its_line() -> None:
    source = (
        "import os\n"
        "from sciwm.space import SearchSpace\n"
        "\n"
        "def build():\n"
        "    from lab_connectors.md_systems import build_system\n"
        "    import scheduler.gate\n"
        "    return build_system\n"
    )
    assert _check("surrogates/md/relax.py", source) == [
        "surrogates/md/relax.py:5 from lab_connectors.md_systems import build_system"
        "  (surrogates may not import lab_connectors)",
        "surrogates/md/relax.py:6 import scheduler.gate  (surrogates may not import scheduler)",
    ]


@pytest.mark.parametrize(
    ("path", "source", "n"),
    [
        ("sciwm/space.py", "from flows.loop import CampaignLoop", 1),
        ("sciwm/spec.py", "if TYPE_CHECKING:\n    from scheduler.gate import X", 1),
        ("lab_connectors/replay.py", "from surrogates.mlrun.data import load", 1),
        ("scheduler/agent.py", "from surrogates.gp import GPWorldModel", 1),
        ("scheduler/agent.py", "from sciwm.world_model import WorldModel", 0),
        ("flows/loop.py", "from tests.flows import fns", 1),
        ("flows/loop.py", "from lab_connectors.local import LocalConnector", 0),
        ("sciwm/cli.py", "from flows.campaign import run_campaign", 0),
        ("sciwm/bench/campaign/run.py", "from surrogates.gp import GPWorldModel", 0),
        ("sciwm/serve.py", "import flows.campaign", 0),
        ("sciwm/api/__init__.py", "from scheduler.agent import Agent", 0),
        ("sciwm/report.py", "import torch\nimport numpy as np", 0),
    ],
)
def test_checker_on_layers(path: str, source: str, n: int) -> None:
    assert len(_check(path, source)) == n, _check(path, source)


@pytest.mark.parametrize(
    ("path", "source", "n"),
    [
        ("flows/md_data.py", "from lab_connectors._md_worker import simulate", 1),
        ("flows/md_data.py", "from lab_connectors import _md_worker", 1),
        ("sciwm/cli.py", "import lab_connectors._local_worker", 1),  # a front door too
        ("surrogates/md/relax.py", "from ..mlrun._x import y", 1),  # relative
        ("lab_connectors/local.py", "from lab_connectors._local_worker import run", 0),
        ("lab_connectors/local.py", "from . import _local_worker", 0),
        ("lab_connectors/local.py", "from lab_connectors.local import _helper", 0),  # a name
        ("surrogates/mlrun/model.py", "from surrogates.mlrun._x import y", 0),
    ],
)
def test_checker_on_private_modules(path: str, source: str, n: int) -> None:
    assert len(_check(path, source)) == n, _check(path, source)
