"""The ``sciwm`` command: clear errors, status, predict and report on a real campaign."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciwm.cli import main
from tests.flows.conftest import write_campaign

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def finished_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real campaign run once through the CLI (plain loop), shared by this module."""
    folder = tmp_path_factory.mktemp("cli")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = write_campaign(folder, "cli-camp", max_experiments=6, initial=3)
    assert main(["campaign", "run", str(spec), "--no-prefect"]) == 0
    yield folder
    mp.undo()


def test_status_lists_every_experiment_and_the_budget(finished_campaign: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["campaign", "status", "cli-camp"]) == 0
    out = capsys.readouterr().out
    assert out.count("completed") == 6
    assert "best f:" in out
    assert "budget: spent" in out and "left" in out
    assert "stopped because: reached the maximum of 6 experiments" in out


def test_predict_answers_with_intervals(finished_campaign: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["predict", "cli-camp", "-p", "x=0.3", "-p", "y=0.7", "-p", "kind=a"]) == 0
    out = capsys.readouterr().out
    assert "90% interval" in out and "cost (s)" in out
    assert "nothing real was run" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "x=2.0", "-p", "y=0.5", "-p", "kind=a"], "out of range"),
        (["-p", "x=0.2", "-p", "y=0.5", "-p", "kind=a", "-p", "z=1"], "unknown parameter"),
        (["-p", "x=0.2", "-p", "kind=a"], "missing value"),
        (["-p", "x=0.2", "-p", "y=0.5", "-p", "kind=c"], "not one of"),
        (["-p", "x0.2"], "name=value"),
    ],
)
def test_predict_bad_parameters_give_one_clear_line(
    finished_campaign: Path, capsys, args: list[str], needle: str
) -> None:
    capsys.readouterr()
    assert main(["predict", "cli-camp", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
    assert "Traceback" not in err


def test_report_writes_pngs(finished_campaign: Path, capsys) -> None:
    out_dir = finished_campaign / "rep"
    assert main(["campaign", "report", "cli-camp", "--out", str(out_dir)]) == 0
    for name in ("best_vs_cost.png", "predicted_vs_measured.png"):
        data = (out_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_unknown_campaign_names_the_known_ones(finished_campaign: Path, capsys) -> None:
    assert main(["campaign", "status", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "cli-camp" in err


def test_bad_campaign_file_gives_its_location(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(write_campaign(tmp_path, "x").read_text().replace("total = 30.0", "total = -1"))
    assert main(["campaign", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "budget.total" in err and "Traceback" not in err


def test_bad_world_model_setting_fails_before_anything_runs(tmp_path: Path, capsys) -> None:
    spec = write_campaign(tmp_path, "badwm")
    spec.write_text(spec.read_text() + '\n[world_model]\ntype = "gp"\nsettings = { seed = "x" }\n')
    assert main(["campaign", "run", str(spec), "--no-prefect"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(f"error: invalid campaign file {spec}: world_model.settings.seed: ")
    assert "must be a whole number, got 'x'" in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing ran, nothing was recorded


def test_connector_that_cannot_be_imported(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_campaign(tmp_path, "badconn", function="nowhere_module_xyz")
    text = spec.read_text().replace("tests.flows.fns:nowhere_module_xyz", "nowhere_module_xyz:fn")
    spec.write_text(text)
    assert main(["campaign", "run", str(spec), "--no-prefect"]) == 2
    err = capsys.readouterr().err
    assert "nowhere_module_xyz" in err and "Traceback" not in err


def test_predict_without_a_logged_model_fits_one_that_can(tmp_path: Path, capsys) -> None:
    """A campaign whose world model predicts before any result answers ``predict`` at once."""
    from sciwm.spec import load_spec
    from sciwm.store import RecordStore

    spec_path = write_campaign(
        tmp_path, "prior-cli", world_model="tests.flows.prior_double:PriorWorldModelDouble"
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    RecordStore(uri).open_campaign(load_spec(spec_path), spec_path.read_text())
    capsys.readouterr()
    point = ["-p", "x=0.3", "-p", "y=0.7", "-p", "kind=a"]
    assert main(["--tracking-uri", uri, "predict", "prior-cli", *point]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["f"])
    assert [abs(float(v)) for v in row[1:3]] == [0.0, 0.2], (
        out
    )  # the double's mean 0 and std 0.2 at its optimum
    gp = write_campaign(tmp_path, "gp-cli")
    RecordStore(uri).open_campaign(load_spec(gp), gp.read_text())
    assert main(["--tracking-uri", uri, "predict", "gp-cli", *point]) == 2
    assert "cannot predict from 0 finished experiment(s)" in capsys.readouterr().err


def test_unreachable_store_is_one_clear_line(tmp_path: Path, capsys) -> None:
    spec = write_campaign(tmp_path, "nostore")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    uri = f"sqlite:///{blocker}/mlflow.db"
    assert main(["--tracking-uri", uri, "campaign", "run", str(spec), "--no-prefect"]) == 2
    err = capsys.readouterr().err
    assert uri in err and "Traceback" not in err
