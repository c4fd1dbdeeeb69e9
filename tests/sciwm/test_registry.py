"""The registry: classes by entry-point name or import path, checked, and the one factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sciwm.errors import ConnectorError, SciwmError, WorldModelError
from sciwm.registry import (
    CONNECTORS,
    WORLD_MODELS,
    build_connector,
    build_world_model,
    connector_class,
    load_object,
    registered,
    resolve,
    world_model_class,
)
from sciwm.space import Parameter, SearchSpace
from sciwm.spec import ConnectorSpec, WorldModelSpec
from sciwm.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[2]


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

    assert resolve(WORLD_MODELS, "gp") is GPWorldModel
    assert world_model_class("surrogates.gp:GPWorldModel") is GPWorldModel
    assert GPWorldModel.name == "gp"


def test_setup_registers_every_entry_point_of_pyproject() -> None:
    """``make setup`` (``pip install -e .``) registers the entry points in pyproject.toml, and
    they are the one list of names: each imports a class of its group's contract."""
    import tomllib

    from sciwm.connector import Connector

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]
    assert set(declared) == {CONNECTORS, WORLD_MODELS}
    for group, base in ((CONNECTORS, Connector), (WORLD_MODELS, WorldModel)):
        installed = {name: ep.value for name, ep in registered(group).items()}
        assert installed.items() >= declared[group].items(), (group, installed)
        for name in declared[group]:
            assert issubclass(resolve(group, name), base), name
    assert {"local", "replay", "mltrain", "openmm"} <= set(declared[CONNECTORS])
    assert {"gp", "mlrun", "md_emulator"} <= set(declared[WORLD_MODELS])


def test_unknown_short_name_lists_known() -> None:
    with pytest.raises(WorldModelError, match="unknown world model type 'gpp'") as info:
        resolve(WORLD_MODELS, "gpp")
    assert "'gp'" in str(info.value)
    assert "package.module:Class" in str(info.value)
    with pytest.raises(ConnectorError, match="unknown connector type 'slurmm'") as info:
        connector_class("slurmm")
    assert "'local'" in str(info.value)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("no_such_pkg.x:Runner", "cannot import module 'no_such_pkg.x'"),
        ("sciwm.space:Nope", "has no attribute 'Nope'"),
        ("sciwm.space:Parameter", "not a subclass of sciwm.connector.Connector"),
        ("sciwm.connector:Connector", r"does not implement \['cancel', 'fetch', 'poll'"),
    ],
)
def test_connector_import_path_errors_name_the_step(ref: str, match: str) -> None:
    with pytest.raises(ConnectorError, match=match) as info:
        connector_class(ref)
    assert repr(ref) in str(info.value)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("no_such_pkg:Model", "cannot import module 'no_such_pkg'"),
        ("surrogates.gp:GPWorldModell", "has no attribute 'GPWorldModell'"),
        ("surrogates.gp:GPSettings", "not a subclass of sciwm.world_model.WorldModel"),
        ("sciwm.world_model:WorldModel", "does not implement"),
    ],
)
def test_world_model_import_path_errors_name_the_step(ref: str, match: str) -> None:
    with pytest.raises(WorldModelError, match=match):
        world_model_class(ref)


def test_broken_entry_point_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed entry point whose target is gone: the error names the entry point."""
    dist = tmp_path / "sciwm_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sciwm-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[sciwm.world_models]\nghost = sciwm_test_gone.models:Ghost\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ghost" in registered(WORLD_MODELS)
    with pytest.raises(WorldModelError) as info:
        world_model_class("ghost")
    msg = str(info.value)
    assert "entry point 'ghost' in group sciwm.world_models of sciwm-test-plugin is broken" in msg
    assert "cannot import module 'sciwm_test_gone.models'" in msg
    assert "Reinstall" in msg


def test_build_world_model_from_the_spec_table() -> None:
    from surrogates.gp import GPWorldModel

    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    model = build_world_model(WorldModelSpec(type="gp", settings={"seed": 3}), space, ["y"])
    assert isinstance(model, GPWorldModel) and model.cfg.seed == 3 and model.outcomes == ["y"]
    with pytest.raises(WorldModelError, match=r"world_model\.settings\.seed: must be a whole"):
        build_world_model(WorldModelSpec(type="gp", settings={"seed": "x"}), space, ["y"])


def test_build_connector_applies_defaults_under_the_tables_settings(tmp_path: Path) -> None:
    fn = "tests.lab_connectors.fixtures_fns:quadratic"
    part = ConnectorSpec(type="local", settings={"function": fn, "parallelism": 3})
    conn = build_connector(part, tmp_path, {"parallelism": 1, "timeout_s": 7})
    try:
        assert conn.capacity() == 3  # the table wins over the defaults
        assert conn.timeout_s == 7.0
    finally:
        conn.close()
    with pytest.raises(ConnectorError, match="needs the setting 'function'"):
        build_connector(ConnectorSpec(type="local"), tmp_path)
