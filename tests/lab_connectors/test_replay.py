"""The replay connector: a recorded run table answers experiments (conformance + lookups)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pandas as pd
import pytest

from lab_connectors.replay import ReplayConnector
from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import ConnectorConformance, wait_finished

pytestmark = pytest.mark.timeout(60)

ROWS = [
    # dataset, learner, anchor, score, train_time
    ("toy", "sklearn.ensemble.RandomForestClassifier", 16, 0.70, 0.05),
    ("toy", "sklearn.ensemble.RandomForestClassifier", 64, 0.81, 0.20),
    ("toy", "SVC_rbf", 64, 0.77, 0.10),
    ("toy", "SVC_rbf", 128, 0.90, 900.0),  # the slow one: 9 s at time_scale 0.01
]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "runs.csv"
    pd.DataFrame(ROWS, columns=["dataset", "learner", "anchor", "score", "train_time"]).to_csv(
        path, index=False
    )
    return path


def exp(learner: str, anchor: int, seq: int = 0) -> Experiment:
    return Experiment.create("replay-test", seq, {"learner": learner, "train_size": anchor})


class TestReplayConformance(ConnectorConformance):
    @pytest.fixture(autouse=True)
    def _record(self, record: Path) -> None:
        self.record = record

    def make_connector(self, workdir: Path) -> Connector:
        return ReplayConnector(
            workdir,
            data=str(self.record),
            dataset="toy",
            anchor_param="train_size",
            time_scale=0.01,
        )

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return exp("RandomForestClassifier", 64)

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return exp("RandomForestClassifier", 100, seq=1)

    @pytest.fixture
    def failing_message(self) -> str:
        return "no record at training size 100"

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["accuracy"]

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return exp("SVC_rbf", 128, seq=2)

    def times_run(self, connector: Connector, experiment: Experiment) -> int | None:
        assert isinstance(connector, ReplayConnector)
        return connector.times_run(experiment.id)


def test_recorded_outcome_and_cost(tmp_path: Path, record: Path) -> None:
    conn = ReplayConnector(tmp_path, data=str(record), dataset="toy", anchor_param="train_size")
    handle = conn.submit(exp("sklearn.ensemble.RandomForestClassifier", 16))
    assert wait_finished(conn, handle) is Status.COMPLETED
    obs = conn.fetch(handle)
    assert obs.outcomes == {"accuracy": pytest.approx(0.70)}
    assert obs.cost == pytest.approx(0.05)  # charged the recorded train time


def test_time_outcome_reports_the_train_time_too(tmp_path: Path, record: Path) -> None:
    conn = ReplayConnector(
        tmp_path,
        data=str(record),
        dataset="toy",
        anchor_param="train_size",
        time_outcome="train_time",
    )
    obs = conn.fetch(conn.submit(exp("SVC_rbf", 64)))
    assert obs.outcomes == {"accuracy": pytest.approx(0.77), "train_time": pytest.approx(0.10)}
    assert obs.cost == pytest.approx(0.10)
    with pytest.raises(ConnectorError, match="time_outcome"):
        ReplayConnector(tmp_path, data=str(record), time_outcome="accuracy")


def test_unknown_learner_fails_with_what_is_recorded(tmp_path: Path, record: Path) -> None:
    conn = ReplayConnector(tmp_path, data=str(record), dataset="toy", anchor_param="train_size")
    obs = conn.fetch(conn.submit(exp("NoSuchLearner", 64)))
    assert obs.status is Status.FAILED
    assert "NoSuchLearner" in obs.error and "RandomForestClassifier" in obs.error


def test_snap_uses_the_largest_recorded_size_below(tmp_path: Path, record: Path) -> None:
    conn = ReplayConnector(
        tmp_path, data=str(record), dataset="toy", anchor_param="train_size", snap=True
    )
    obs = conn.fetch(conn.submit(exp("RandomForestClassifier", 100)))
    assert obs.status is Status.COMPLETED
    assert obs.outcomes["accuracy"] == pytest.approx(0.81)
    assert obs.metadata["snapped_to"] == 64


def test_bad_settings_raise(tmp_path: Path, record: Path) -> None:
    with pytest.raises(ConnectorError, match="unknown setting"):
        ReplayConnector(tmp_path, data=str(record), colour="blue")
    with pytest.raises(ConnectorError, match="does not exist"):
        ReplayConnector(tmp_path, data=str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        [("toy", "SVC_rbf", 16, float("nan"), 0.1)],
        columns=["dataset", "learner", "anchor", "score", "train_time"],
    ).to_csv(bad, index=False)
    with pytest.raises(ConnectorError, match="NaN"):
        ReplayConnector(tmp_path, data=str(bad))


@pytest.mark.slow  # reads LCDB's 150 MB CSV when the cache is cold
def test_lcdb_record(tmp_path: Path) -> None:
    if importlib.util.find_spec("lcdb") is None:
        pytest.skip("lcdb is not installed")
    conn = ReplayConnector(tmp_path, dataset="letter-6", anchor_param="train_size")
    obs = conn.fetch(conn.submit(exp("SVC_rbf", 16200)))
    assert obs.status is Status.COMPLETED, obs.error
    assert 0.5 < obs.outcomes["accuracy"] <= 1.0 and obs.cost > 1.0


def test_resolve_snaps_to_the_recorded_size_that_would_run(tmp_path: Path, record: Path) -> None:
    lab = ReplayConnector(
        tmp_path, data=str(record), dataset="toy", anchor_param="train_size", snap=True
    )
    assert lab.resolve({"learner": "SVC_rbf", "train_size": 100}) == {
        "learner": "SVC_rbf",
        "train_size": 64,
    }
    plain = ReplayConnector(
        tmp_path / "p", data=str(record), dataset="toy", anchor_param="train_size"
    )
    assert plain.resolve({"learner": "SVC_rbf", "train_size": 100})["train_size"] == 100


def test_curve_mode_charges_the_fits_reports_partial_points_and_cancels_at_cost_so_far(
    tmp_path: Path, record: Path
) -> None:
    lab = ReplayConnector(
        tmp_path,
        data=str(record),
        dataset="toy",
        anchor_param="train_size",
        curve=True,
        time_scale=0.002,
    )
    e = exp("SVC_rbf", 128)
    h = lab.submit(e)  # the fit at 64 (0.1 s recorded) is done after 0.2 ms, 128's takes 1.8 s
    time.sleep(0.05)
    points = lab.partial(h)
    assert points == [{"fidelity": {"train_size": 64}, "outcomes": {"accuracy": 0.77}, "cost": 0.1}]
    assert lab.poll(h) is Status.RUNNING
    lab.cancel(h)
    obs = lab.fetch(h)
    assert obs.status is Status.CANCELLED
    assert 0.1 <= obs.cost < 900.1  # charged the recorded time it had run
    assert obs.metadata["curve"] == points
    done = lab.lookup(exp("RandomForestClassifier", 64, 1))
    assert done.cost == pytest.approx(0.05 + 0.20)  # a full curve costs every fit it took
    assert [p["anchor"] for p in done.metadata["curve"]] == [16, 64]
