"""The mltrain connector: real scikit-learn / torch training runs with logged learning curves."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab_connectors.mltrain import MLTrainConnector, anchors_up_to, read_curve
from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import ConnectorConformance, wait_finished

pytestmark = pytest.mark.timeout(120)


def exp(learner: str, size: int, seq: int = 0, **hyper: object) -> Experiment:
    return Experiment.create("mltrain-test", seq, {"learner": learner, "train_size": size, **hyper})


class TestMLTrainConformance(ConnectorConformance):
    finish_timeout_s = 60.0

    def make_connector(self, workdir: Path) -> Connector:
        return MLTrainConnector(workdir, data="digits", timeout_s=60, parallelism=2)

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return exp("DecisionTreeClassifier", 200)

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return exp("NoSuchLearner", 200, seq=1)

    @pytest.fixture
    def failing_message(self) -> str:
        return "unknown learner 'NoSuchLearner'"

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["accuracy"]

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return exp("TorchMLP", 1000, seq=2, epochs=100000)


def test_curve_logged_and_outcome_is_its_last_point(tmp_path: Path) -> None:
    conn = MLTrainConnector(tmp_path / "c", data="digits")
    e = exp("sklearn.naive_bayes.GaussianNB", 300)
    handle = conn.submit(e)
    assert wait_finished(conn, handle, 60) is Status.COMPLETED, conn.fetch(handle).error
    obs = conn.fetch(handle)
    curve = read_curve(conn.workdir / e.id)
    assert [p["anchor"] for p in curve] == anchors_up_to(300) == [16, 32, 64, 128, 256, 300]
    assert obs.outcomes["accuracy"] == pytest.approx(curve[-1]["score"])
    assert 0.5 < obs.outcomes["accuracy"] <= 1.0
    assert obs.cost == pytest.approx(sum(p["train_time"] for p in curve))  # training only


@pytest.mark.slow
def test_curve_logged_to_mlflow_with_steps(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    conn = MLTrainConnector(tmp_path / "c", data="digits", tracking_uri=uri, experiment_name="c")
    handle = conn.submit(exp("sklearn.naive_bayes.GaussianNB", 300))
    assert wait_finished(conn, handle, 90) is Status.COMPLETED, conn.fetch(handle).error
    import mlflow

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("c").experiment_id])
    history = client.get_metric_history(run.info.run_id, "score")
    assert [m.step for m in history] == [16, 32, 64, 128, 256, 300]


def test_bad_settings_raise(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="neither"):
        MLTrainConnector(tmp_path, data="no-such-data")
    with pytest.raises(ConnectorError, match="test_fraction"):
        MLTrainConnector(tmp_path, test_fraction=1.5)
    with pytest.raises(ConnectorError, match="unknown setting"):
        MLTrainConnector(tmp_path, colour="blue")


def test_training_size_out_of_range_fails(tmp_path: Path) -> None:
    conn = MLTrainConnector(tmp_path, data="iris")
    handle = conn.submit(exp("DecisionTreeClassifier", 5000))
    wait_finished(conn, handle, 60)
    obs = conn.fetch(handle)
    assert obs.status is Status.FAILED and "out of range" in obs.error
