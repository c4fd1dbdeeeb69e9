"""``sciwm predict NAME --file``: many candidates at once, CSV or JSON in and out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import sciwm
from sciwm.cli import main
from tests.sciwm.serve.conftest import NAME

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def store(store_uri: str) -> str:
    return store_uri


def _run(uri: str, *args: str) -> int:
    return main(["--tracking-uri", uri, "predict", NAME, *args])


def test_csv_in_csv_and_json_out(store: str, tmp_path: Path, capsys) -> None:
    cands = tmp_path / "c.csv"
    cands.write_text("x,y,kind\n0.3,0.7,a\n0.9,0.1,b\n 0.5 , 0 ,a\n")
    out_csv, out_json = tmp_path / "p.csv", tmp_path / "p.json"
    assert _run(store, "--file", str(cands), "--out", str(out_csv)) == 0
    assert "wrote 3 predictions" in capsys.readouterr().out
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    assert [r["kind"] for r in rows] == ["a", "b", "a"]
    assert {"f_mean", "f_lower", "f_upper", "cost_mean", "cost_upper", "extrapolating"} <= set(
        rows[0]
    )
    expected = sciwm.open_campaign(NAME, store).predict(
        [{"x": 0.3, "y": 0.7, "kind": "a"}, {"x": 0.9, "y": 0.1, "kind": "b"}]
    )
    assert [float(r["f_mean"]) for r in rows[:2]] == pytest.approx(
        [p.outcomes["f"].mean for p in expected]
    )
    assert _run(store, "--file", str(cands), "--out", str(out_json), "--level", "0.5") == 0
    items = json.loads(out_json.read_text())
    assert items[2]["parameters"] == {"x": 0.5, "y": 0.0, "kind": "a"}
    assert items[0]["outcomes"]["f"]["level"] == 0.5
    assert items[0]["outcomes"]["f"]["mean"] == pytest.approx(float(rows[0]["f_mean"]))


def test_json_in_table_or_json_to_stdout(store: str, tmp_path: Path, capsys) -> None:
    cands = tmp_path / "c.json"
    cands.write_text(json.dumps({"candidates": [{"x": 0.3, "y": 0.7, "kind": "a"}]}))
    capsys.readouterr()
    assert _run(store, "--file", str(cands)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["x", "y", "kind", "f_mean"]
    assert _run(store, "--file", str(cands), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)[0]["cost"]["mean"] > 0


@pytest.mark.parametrize(
    ("name", "text", "extra", "needle"),
    [
        ("c.csv", "x,y,kind\n0.3,0.7,a\n2.0,0.1,b\n", [], "c.csv, candidate 2: parameter 'x'"),
        ("c.csv", "x,y\n0.3,0.7\n", [], "candidate 1: missing value"),
        ("c.csv", "", [], "empty"),
        ("c.json", "{oops", [], "not valid JSON"),
        ("c.json", '{"x": 1}', [], "expected a JSON list of objects"),
        ("c.txt", "x", [], "give a .csv or .json file"),
        ("c.csv", "x,y,kind\n0.3,0.7,a\n", ["--out", "p.xlsx"], "name a .csv or .json"),
    ],
)
def test_bad_files_give_one_clear_line(
    store: str, tmp_path: Path, capsys, name: str, text: str, extra: list[str], needle: str
) -> None:
    f = tmp_path / name
    f.write_text(text)
    assert _run(store, "--file", str(f), *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


def test_missing_file_and_format_without_file(store: str, tmp_path: Path, capsys) -> None:
    assert _run(store, "--file", str(tmp_path / "none.csv")) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert _run(store, "--format", "csv") == 2
    assert "go with --file" in capsys.readouterr().err
