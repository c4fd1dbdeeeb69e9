"""``sciwm connectors check|list`` and the ``Connector.check`` contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sciwm.cli import main
from sciwm.cli_connectors import findings_for, parse_settings
from sciwm.connector import Connector, Finding, Handle
from sciwm.errors import BackendUnavailable, ConnectorError, SpecError
from sciwm.experiment import Experiment, Observation, Status

pytestmark = pytest.mark.timeout(60)


class DownLabDouble(Connector):
    """Test double: a backend that is down (its capacity call is refused)."""

    name = "down_lab_double"

    def submit(self, experiment: Experiment) -> Handle:
        raise BackendUnavailable("lab at 127.0.0.1:9 refused the connection")

    def poll(self, handle: Handle) -> Status:
        raise BackendUnavailable("down")

    def fetch(self, handle: Handle) -> Observation:
        raise BackendUnavailable("down")

    def cancel(self, handle: Handle) -> None:
        raise BackendUnavailable("down")

    def capacity(self) -> int:
        raise BackendUnavailable("lab at 127.0.0.1:9 refused the connection")


class BadTokenDouble(DownLabDouble):
    """Test double: reachable, but it reports a refused credential from its own check."""

    name = "bad_token_double"

    def capacity(self) -> int:
        return 3

    def check(self) -> list[Finding]:
        return [
            *super().check(),
            Finding("credentials", False, "the lab answered 401", "set LAB_TOKEN"),
        ]


HERE = "tests.sciwm.test_cli_connectors"


def test_backend_unavailable_is_a_connector_error_with_a_hint() -> None:
    exc = BackendUnavailable("down", retry_after_s=2.5)
    assert isinstance(exc, ConnectorError)
    assert exc.retry_after_s == 2.5 and str(exc) == "down"


def test_default_check_reports_a_reachable_backend_from_capacity(tmp_path: Path) -> None:
    what, findings = findings_for("replay")
    assert "ReplayConnector" in what
    assert [(f.aspect, f.ok) for f in findings] == [("settings", True), ("reachable", True)]
    assert "1 slot(s) free" in findings[1].message


def test_default_check_reports_a_down_backend_with_a_fix() -> None:
    _, findings = findings_for(f"{HERE}:DownLabDouble")
    down = [f for f in findings if not f.ok]
    assert [f.aspect for f in down] == ["reachable"]
    assert "refused the connection" in down[0].message and down[0].fix


def test_check_prints_what_is_wrong_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "check", f"{HERE}:BadTokenDouble"]) == 2
    out = capsys.readouterr().out
    assert "ok    reachable" in out
    assert "FAIL  credentials  the lab answered 401" in out
    assert "fix: set LAB_TOKEN" in out


def test_check_of_a_name_with_missing_settings_says_which(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connectors", "check", "local"]) == 2
    out = capsys.readouterr().out
    assert "FAIL  settings" in out and "needs the setting 'function'" in out


def test_check_with_set_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    fn = "lab_connectors.demo_tasks:train_digits_hgb"
    assert main(["connectors", "check", "local", "--set", f"function={fn}"]) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_check_of_a_campaign_file_uses_its_connector_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.flows.conftest import write_campaign

    spec = write_campaign(tmp_path, "check-camp")
    assert main(["connectors", "check", str(spec)]) == 0
    out = capsys.readouterr().out
    assert f"[connector] of {spec}" in out and "2 slot(s) free" in out  # its parallelism
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace("tests.flows.fns:bowl", "tests.flows.fns:nope"))
    assert main(["connectors", "check", str(bad)]) == 2
    assert "has no attribute 'nope'" in capsys.readouterr().out


def test_check_of_a_missing_file_or_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "check", "missing.toml"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["connectors", "check", "no_such_connector"]) == 2
    assert "unknown connector type 'no_such_connector'" in capsys.readouterr().out


def test_list_names_the_registered_connectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "list"]) == 0
    out = capsys.readouterr().out
    assert "local" in out and "lab_connectors.replay:ReplayConnector" in out


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["timeout_s=5"], {"timeout_s": 5}),
        (["base_url=https://lab:8443"], {"base_url": "https://lab:8443"}),
        (['name="x y"', "ok=true", "xs=[1, 2]"], {"name": "x y", "ok": True, "xs": [1, 2]}),
    ],
)
def test_parse_settings(pairs: list[str], expected: dict[str, Any]) -> None:
    assert parse_settings(pairs) == expected


def test_parse_settings_refuses_a_pair_without_equals() -> None:
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_settings(["timeout_s"])
