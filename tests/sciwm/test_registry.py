"""Loading classes by import path, short name or entry point, with errors that name the path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sciwm.errors import ConnectorError, SciwmError, WorldModelError
from sciwm.registry import BUILTIN, load_object, resolve
from sciwm.space import Parameter
from sciwm.world_model import WorldModel


def test_load_object_by_path() -> None:
    assert load_object("sciwm.space:Parameter") is Parameter
    assert load_object("sciwm.world_model:WorldModel.load") is WorldModel.load  # dotted attr


@pytest.mark.parametrize("ref", ["sciwm.space.Parameter", "sciwm.space", ":Parameter", "sciwm:"])
def test_malformed_path(ref: str) -> None:
    with pytest.raises(ConnectorError, match="not an import path") as info:
        load_object(ref, "connector", ConnectorError)
    assert repr(ref) in str(info.value)
    assert "package.module:name" in str(info.value)  # says how to write it


def test_missing_module() -> None:
    with pytest.raises(WorldModelError, match="cannot import module 'no_such_pkg.mod'") as info:
        load_object("no_such_pkg.mod:Model", "world model", WorldModelError)
    assert "'no_such_pkg.mod:Model'" in str(info.value)
    assert "installed" in str(info.value)


def test_missing_attribute() -> None:
    with pytest.raises(ConnectorError, match="has no attribute 'Nope'") as info:
        load_object("sciwm.space:Nope", "connector", ConnectorError)
    assert "'sciwm.space:Nope'" in str(info.value)
    with pytest.raises(ConnectorError, match="'Parameter.nope'"):
        load_object("sciwm.space:Parameter.nope", "connector", ConnectorError)


def test_module_that_crashes_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sciwm_test_broken_plugin.py").write_text("raise RuntimeError('bad plugin')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConnectorError, match="RuntimeError: bad plugin") as info:
            load_object("sciwm_test_broken_plugin:Thing", "connector", ConnectorError)
        assert "sciwm_test_broken_plugin" in str(info.value)
    finally:
        sys.modules.pop("sciwm_test_broken_plugin", None)


def test_default_error_class_is_project_error() -> None:
    with pytest.raises(SciwmError):
        load_object("no_such_pkg:X")


def test_short_name_resolves_gp() -> None:
    from surrogates.gp import GPWorldModel

    assert resolve("sciwm.world_models", "gp", WorldModelError) is GPWorldModel
    assert resolve("sciwm.world_models", "surrogates.gp:GPWorldModel") is GPWorldModel
    assert GPWorldModel.name == "gp"


def test_builtin_names_import() -> None:
    for names in BUILTIN.values():
        for ref in names.values():
            assert isinstance(load_object(ref), type), ref


def test_unknown_short_name_lists_known() -> None:
    with pytest.raises(WorldModelError, match="unknown world model type 'gpp'") as info:
        resolve("sciwm.world_models", "gpp", WorldModelError)
    assert "'gp'" in str(info.value)
    assert "package.module:Class" in str(info.value)
    with pytest.raises(ConnectorError, match="unknown connector type"):
        resolve("sciwm.connectors", "slurmm", ConnectorError)


def test_import_path_errors_through_resolve() -> None:
    with pytest.raises(ConnectorError, match="no_such_pkg"):
        resolve("sciwm.connectors", "no_such_pkg.x:Runner", ConnectorError)
