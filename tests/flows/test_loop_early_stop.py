"""Early stopping through the real loop: replay walks learning curves in (scaled) real time."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

from flows.campaign import build_loop
from flows.loop_early import stop_early
from scheduler.gate import Candidate
from sciwm.experiment import Status
from sciwm.store import RecordStore, default_tracking_uri
from sciwm.summary import EARLY_STOP_KEY, gate_summary

pytestmark = pytest.mark.timeout(240)

SIZES = [64, 128, 256, 512, 1024, 2048, 4096]
TOP = {"good": 0.9, "bad": 0.6}
SCALE = 0.001  # real seconds per recorded second


def curve(learner: str, n: int) -> float:
    return TOP[learner] - 0.2 * (1 - math.log(n / 64) / math.log(64))


def train_time(n: int) -> float:
    return 2000.0 if n == 4096 else 1.0  # the last fit is slow: 2 s at SCALE


CAMPAIGN = """
[campaign]
name = "early"

[[parameters]]
name = "learner"
type = "categorical"
choices = ["good", "bad"]

[[parameters]]
name = "train_size"
type = "int"
low = 64
high = 4096
log = true
fidelity = true

[[objectives]]
name = "accuracy"
direction = "maximize"

[budget]
total = 100000.0

[connector]
type = "lab_connectors.replay:ReplayConnector"

[connector.settings]
data = "{data}"
dataset = "toy"
anchor_param = "train_size"
curve = true
time_scale = {scale}
parallelism = 4

[scheduler]
parallelism = 4
batch_size = 1
poll_interval_s = 0.01
"""


def _wait(loop, ids: list[str]) -> None:
    for _ in range(1000):
        loop.poll()
        if not any(i in loop.state.running for i in ids):
            return
        time.sleep(0.01)
    raise AssertionError("runs did not finish")


def _dispatch(loop, learner: str, n: int) -> str:
    (d,) = loop.gate_and_dispatch([Candidate({"learner": learner, "train_size": n}, None)], 1)
    assert d.dispatch
    return next(reversed(loop.state.running))


def test_a_hopeless_curve_is_cancelled_with_its_saving_a_promising_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rows = [(("toy", lr, n, curve(lr, n), train_time(n))) for lr in TOP for n in SIZES]
    data = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=["dataset", "learner", "anchor", "score", "train_time"]).to_csv(
        data, index=False
    )
    spec = tmp_path / "early.toml"
    spec.write_text(CAMPAIGN.format(data=data, scale=SCALE))
    loop = build_loop(spec, tmp_path)
    # what the campaign knows first: both learners' short curves, the good one to the end
    seeded = [_dispatch(loop, "good", 2048), _dispatch(loop, "bad", 1024)]
    seeded.append(_dispatch(loop, "good", 4096))
    _wait(loop, seeded)
    assert loop.fit() and max(loop.objective_values()) == pytest.approx(0.9)
    # a bad run and a good one towards 4096: their curves up to 2048 arrive in 7 ms
    bad, good = _dispatch(loop, "bad", 4096), _dispatch(loop, "good", 4096)
    time.sleep(0.1)
    assert stop_early(loop) == [bad]
    assert good in loop.state.running and bad not in loop.state.stopped_early.get(good, {})
    _wait(loop, [bad])
    records = {
        r.experiment.id: r for r in RecordStore(default_tracking_uri(tmp_path)).records("early")
    }
    stopped = records[bad]
    assert stopped.status is Status.CANCELLED
    info = stopped.observation.metadata[EARLY_STOP_KEY]
    assert info["saved_cost"] > 0 and "cannot reach the best result" in info["reason"]
    assert stopped.observation.cost < 2006  # charged what it ran, not the slow last fit
    assert [p["fidelity"]["train_size"] for p in info["partial"]][-1] == 2048
    # its partial curve is data for the world model, never a best value or a completed result
    experiments, _ = loop.history()
    assert any(e.id.startswith(f"{bad}.partial") for e in experiments)
    assert max(loop.objective_values()) == pytest.approx(0.9)
    assert gate_summary(list(records.values()), [])["n_stopped_early"] == 1
