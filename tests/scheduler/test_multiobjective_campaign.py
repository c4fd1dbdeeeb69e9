"""A campaign with several objectives or constraints through the loop, status and report."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch

from flows.loop import CampaignLoop
from sciwm.cli_inspect import report, status
from sciwm.pareto import as_tensor, hypervolume, pareto_mask
from sciwm.spec import parse_spec
from sciwm.store import RecordStore

pytestmark = pytest.mark.timeout(240)

LAB = "sciwm.testing.simulated_lab:SimulatedLab"

MO_FILE = f"""
[campaign]
name = "bc-mo"
seed = 3

[[parameters]]
name = "x1"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "x2"
type = "float"
low = 0.0
high = 1.0

[[objectives]]
name = "f1"
direction = "minimize"
ref = 18.0

[[objectives]]
name = "f2"
direction = "minimize"
ref = 6.0

[budget]
total = 60.0
unit = "cost"

[connector]
type = "{LAB}"
settings = {{ problem = "branin_currin" }}

[scheduler]
initial_experiments = 4
num_restarts = 2
raw_samples = 32
poll_interval_s = 0.0001

[stopping]
max_experiments = 6
"""

#: Branin is >= 0.398 everywhere: the constraint f <= 0 cannot hold.
INFEASIBLE_FILE = f"""
[campaign]
name = "branin-infeasible"

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

[[constraints]]
outcome = "f"
op = "<="
bound = 0.0

[budget]
total = 100.0
unit = "cost"

[connector]
type = "{LAB}"
settings = {{ problem = "branin" }}

[scheduler]
initial_experiments = 3
num_restarts = 2
raw_samples = 32
poll_interval_s = 0.0001

[stopping]
max_experiments = 5
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RecordStore:
    return RecordStore(f"sqlite:///{tmp_path_factory.mktemp('mo-store') / 'mlflow.db'}")


def _run(text: str, store: RecordStore, root: Path):
    spec = parse_spec(tomllib.loads(text))
    loop = CampaignLoop(spec, text, store, root / spec.name)
    return loop, loop.run()


def test_two_objective_campaign_reports_its_front(store, tmp_path, capsys):
    loop, result = _run(MO_FILE, store, tmp_path)
    assert result.n_completed == 6
    assert result.best_value is None and result.pareto_front
    Y = as_tensor(
        [[r.observation.outcomes["f1"], r.observation.outcomes["f2"]] for r in loop.state.finished],
        2,
    )
    on = pareto_mask(Y, [False, False])
    assert len(result.pareto_front) == int(on.sum())
    front = {p["experiment_id"] for p in result.pareto_front}
    assert front == {
        r.experiment.id for r, o in zip(loop.state.finished, on.tolist(), strict=True) if o
    }
    assert result.hypervolume == pytest.approx(hypervolume(Y, [False, False], [18.0, 6.0]))
    # the model-based proposals predicted every objective
    assert any(
        r.prediction is not None and "f2" in r.prediction.outcomes for r in loop.state.finished
    )
    # patience would count hypervolume gains: the loop's series never decreases
    hv = loop.objective_values()
    assert hv == sorted(hv) and hv[-1] == pytest.approx(result.hypervolume)

    capsys.readouterr()
    status("bc-mo", store.tracking_uri)
    out = capsys.readouterr().out
    assert "Pareto front:" in out and "hypervolume:" in out and "from the campaign file" in out
    assert "f1" in out.splitlines()[0] and "f2" in out.splitlines()[0]
    # a reference point no result beats yet is said so
    assert ("no result beats the reference point" in out) == (result.hypervolume == 0.0)
    report("bc-mo", store.tracking_uri, tmp_path / "report")
    for name in ("pareto_front.png", "hypervolume_vs_cost.png", "predicted_vs_measured.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000


def test_infeasible_campaign_says_so(store, tmp_path, capsys):
    _, result = _run(INFEASIBLE_FILE, store, tmp_path)
    assert result.n_completed == 5
    assert result.best_value is None and result.best_parameters is None
    assert result.infeasible_note and "infeasible" in result.infeasible_note
    assert "f <= 0" in result.infeasible_note
    capsys.readouterr()
    status("branin-infeasible", store.tracking_uri)
    out = capsys.readouterr().out
    assert "best feasible f: -" in out and "INFEASIBLE" in out


def test_reference_point_is_checked_per_objective():
    text = MO_FILE.replace("ref = 6.0", 'ref = "six"')
    with pytest.raises(Exception, match="ref"):
        parse_spec(tomllib.loads(text))
    torch.manual_seed(0)  # nothing random follows; keeps the module's seed state explicit
