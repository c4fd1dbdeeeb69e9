"""Virtual answers through the real loop: recorded as predictions, never as measurements."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from flows.campaign import build_loop
from sciwm.cli_inspect import status
from sciwm.store import RecordStore, default_tracking_uri

pytestmark = pytest.mark.timeout(240)

CAMPAIGN = """
[campaign]
name = "{name}"
seed = 0

[[parameters]]
name = "x1"
type = "float"
low = -5.0
high = 10.0

[[parameters]]
name = "x2"
type = "float"
low = 0.0
high = 15.0

[[objectives]]
name = "f"
direction = "minimize"

[budget]
total = 200.0
unit = "cost"

[connector]
type = "sciwm.testing.simulated_lab:SimulatedLab"
settings = {{ problem = "branin" }}

[scheduler]
poll_interval_s = 0.0001
num_restarts = 2
raw_samples = 32
virtual = {virtual}
virtual_tolerance = {tolerance}

[stopping]
max_experiments = 12
"""


def _run(folder: Path, name: str, virtual: bool, tolerance: float):
    path = folder / f"{name}.toml"
    path.write_text(CAMPAIGN.format(name=name, virtual=str(virtual).lower(), tolerance=tolerance))
    loop = build_loop(path, folder)
    return loop, loop.run()


def test_a_virtual_answer_is_never_counted_as_a_measurement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # a tolerance far above Branin's range: once trusted, every steered proposal is answered
    # (design points and random fall-backs, which the model did not choose, still run)
    loop, result = _run(tmp_path, "virtual-all", True, 1e6)
    uri = default_tracking_uri(tmp_path)
    store = RecordStore(uri)
    answers = store.virtual_answers("virtual-all")
    records = store.records("virtual-all")
    assert answers, "the gate should have answered proposals virtually"
    # never a result: the records, the counts, the best and the training data are real only
    assert len(records) == result.n_experiments
    real = [r.experiment.parameters for r in records]
    assert all(a.parameters not in real for a in answers)
    assert result.best_value == min(r.observation.outcomes["f"] for r in records)
    assert loop.model.summary.n_observations == result.n_completed == len(records)
    # tagged in MLflow as predictions, apart from the experiments
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("virtual-all")
    runs = client.search_runs([exp.experiment_id], "tags.`sciwm.virtual` = 'true'")
    assert len(runs) == len(answers)
    assert all("cost" not in r.data.metrics and "pred.f.mean" in r.data.metrics for r in runs)
    assert all(r.data.tags["sciwm.kind"] == "virtual" for r in runs)
    # the status says how many and how much they saved
    status("virtual-all", uri)
    out = capsys.readouterr().out
    saved = sum(a.saved_cost for a in answers)
    assert (
        f"answered virtually: {len(answers)} proposal(s), predicted cost saved {saved:.4g}" in out
    )
    # a resumed loop knows them and never proposes them again
    again = build_loop(tmp_path / "virtual-all.toml", tmp_path)
    assert again.state.answered == [a.parameters for a in answers]


def test_virtual_off_runs_every_proposal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _, result = _run(tmp_path, "virtual-off", False, 1e6)
    assert result.n_experiments == 12
    assert RecordStore(default_tracking_uri(tmp_path)).virtual_answers("virtual-off") == []
