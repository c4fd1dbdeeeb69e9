"""The MLflow record store, on real SQLite tracking stores."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import torch
from botorch.posteriors import TorchPosterior
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from torch import Tensor

from sciwm.errors import StoreError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate, Prediction
from sciwm.spec import CampaignSpec, parse_spec
from sciwm.store import Record, RecordStore, default_tracking_uri
from sciwm.store import record as record_module
from sciwm.store import record_store as store_module
from sciwm.summary import campaign_summary
from sciwm.world_model import TrainingSummary, WorldModel, split_by_status

SPEC = """
[campaign]
name = "{name}"

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "kind"
type = "categorical"
choices = ["a", "b"]

[[objectives]]
name = "y"

[budget]
total = {budget}

[connector]
type = "local"
"""

_names = count()


def make_spec(name: str, budget: float = 100.0, high: float = 1.0) -> tuple[CampaignSpec, str]:
    import tomllib

    text = SPEC.format(name=name, budget=budget).replace("high = 1.0", f"high = {high}")
    return parse_spec(tomllib.loads(text)), text


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    """One SQLite store for the module (creating the tables takes ~2 s)."""
    return RecordStore(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")


@pytest.fixture
def campaign(store: RecordStore) -> str:
    """A fresh campaign in the shared store."""
    name = f"c{next(_names)}"
    spec, text = make_spec(name)
    store.open_campaign(spec, text)
    return name


def client(store: RecordStore) -> MlflowClient:
    return MlflowClient(store.tracking_uri)


def runs_of(store: RecordStore, campaign: str, kind: str = "experiment") -> list[Any]:
    exp = client(store).get_experiment_by_name(campaign)
    return list(
        client(store).search_runs(
            [exp.experiment_id], f"tags.`sciwm.kind` = '{kind}'", run_view_type=ViewType.ALL
        )
    )


def prediction(mean: float = 1.0) -> Prediction:
    return Prediction(
        {"y": Estimate.gaussian(mean, 0.5)}, Estimate.lognormal(0.0, 0.2), notes=["test"]
    )


class ConstantWorldModel(WorldModel):
    """Test double: predicts the mean and std of the data it was fitted on, everywhere."""

    name = "constant"

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        completed, costed = split_by_status(experiments, observations)
        ys = torch.tensor([[o.outcomes[n] for n in self.outcomes] for _, o in completed])
        costs = torch.tensor([math.log(o.cost) for _, o in costed], dtype=torch.double)
        self.mean, self.std = ys.double().mean(0), ys.double().std(0)
        self.log_cost = torch.stack([costs.mean(), costs.std()])
        ids = [e.id for e, _ in completed]
        self.summary = TrainingSummary(len(completed), len(costed), self.outcomes, ids)

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = 0.9
    ) -> list[Prediction]:
        outcomes = {
            n: Estimate.gaussian(float(self.mean[i]), float(self.std[i]), level)
            for i, n in enumerate(self.outcomes)
        }
        cost = Estimate.lognormal(float(self.log_cost[0]), float(self.log_cost[1]), level)
        return [Prediction(dict(outcomes), cost) for _ in parameters]

    def posterior(self, X: Tensor, outcome: str) -> TorchPosterior:
        i = self.outcomes.index(outcome)
        shape = X.shape[:-1] + (1,)
        return TorchPosterior(
            torch.distributions.Normal(self.mean[i].expand(shape), self.std[i].expand(shape))
        )

    def log_cost_posterior(self, X: Tensor) -> TorchPosterior:
        shape = X.shape[:-1] + (1,)
        mean, std = self.log_cost
        return TorchPosterior(torch.distributions.Normal(mean.expand(shape), std.expand(shape)))

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        return {"mean": self.mean, "std": self.std, "log_cost": self.log_cost}, {"kind": "const"}

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        assert extra == {"kind": "const"}
        self.mean, self.std, self.log_cost = tensors["mean"], tensors["std"], tensors["log_cost"]


# -- tests ------------------------------------------------------------------------------------
def test_default_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_tracking_uri(tmp_path) == "http://127.0.0.1:5000"


def test_round_trip(store: RecordStore, campaign: str) -> None:
    exp = Experiment.create(campaign, 0, {"x": 0.25, "kind": "b"}, max_cost=30.0)
    pred = prediction(2.0)
    rec = store.record_proposal(exp, pred)
    assert rec.status is Status.PROPOSED and rec.prediction == pred
    rec = store.record_submitted(rec, {"pid": 123, "dir": "/tmp/run0"})
    assert rec.status is Status.RUNNING

    (mid,) = store.records(campaign)
    assert mid == Record(exp, Status.RUNNING, rec.run_id, {"pid": 123, "dir": "/tmp/run0"}, pred)

    obs = Observation(
        exp.id, Status.COMPLETED, {"y": 1.5}, cost=12.0, started_at=100.0, finished_at=112.5
    )
    done = store.record_observation(rec, obs)
    (back,) = store.records(campaign)
    assert back == done
    assert back == Record(
        exp, Status.COMPLETED, rec.run_id, {"pid": 123, "dir": "/tmp/run0"}, pred, obs
    )

    run = client(store).get_run(rec.run_id)
    assert run.info.run_name == exp.id
    assert run.info.status == "FINISHED" and run.info.end_time == 112500
    assert run.data.params == {"x": "0.25", "kind": "b"}
    assert run.data.metrics["y"] == 1.5 and run.data.metrics["cost"] == 12.0
    assert run.data.metrics["pred.y.mean"] == 2.0 and run.data.metrics["pred.y.std"] == 0.5
    assert run.data.metrics["pred.cost.mean"] == pytest.approx(math.exp(0.02))
    assert (
        run.data.metrics["pred.extrapolating"] == 0.0 and "sciwm.extrapolating" not in run.data.tags
    )
    assert run.data.tags["sciwm.experiment_id"] == exp.id
    assert run.data.tags["sciwm.status"] == "completed"


def test_extrapolating_prediction_is_logged(store: RecordStore, campaign: str) -> None:
    exp = Experiment.create(campaign, 0, {"x": 0.75, "kind": "a"})
    pred = dataclasses.replace(
        prediction(2.0), extrapolating=True, extrapolating_reason="x=0.75 is outside 0-0.5"
    )
    rec = store.record_proposal(exp, pred)
    (back,) = store.records(campaign)
    assert back.prediction == pred
    run = client(store).get_run(rec.run_id)
    assert run.data.metrics["pred.extrapolating"] == 1.0
    assert run.data.tags["sciwm.extrapolating"] == "x=0.75 is outside 0-0.5"


def test_record_proposal_is_idempotent(store: RecordStore, campaign: str) -> None:
    exp = Experiment.create(campaign, 0, {"x": 0.5, "kind": "a"})
    first = store.record_proposal(exp, None)
    second = store.record_proposal(exp, prediction())
    assert second.run_id == first.run_id and second.prediction is None
    assert len(runs_of(store, campaign)) == 1

    obs = Observation(exp.id, Status.COMPLETED, {"y": 3.0}, cost=1.0)
    rec = store.record_observation(store.record_submitted(first, {"h": 1}), obs)
    store.record_observation(rec, obs)  # a resumed flow records it again: nothing new
    history = client(store).get_metric_history(rec.run_id, "y")
    assert [m.value for m in history] == [3.0]
    # a finished record is never set back to running
    assert store.record_submitted(rec, {"h": 2}).status is Status.COMPLETED
    assert store.records(campaign)[0].handle == {"h": 1}


def test_failed_observation_keeps_error_text(
    store: RecordStore, campaign: str, tmp_path: Path
) -> None:
    exp = Experiment.create(campaign, 0, {"x": 0.1, "kind": "a"})
    rec = store.record_submitted(store.record_proposal(exp, prediction()), {"job": "7"})
    error = "Traceback (most recent call last):\n" + "".join(
        f"  line {i}: something went wrong\n" for i in range(600)
    )
    assert len(error) > record_module.CHUNK  # needs several tags
    obs = Observation.failed(exp.id, error, cost=4.0, metadata={"log": "z" * 12000})
    store.record_observation(rec, obs)

    (back,) = store.records(campaign)
    assert back.status is Status.FAILED
    assert back.observation == obs  # full error and metadata, across chunks
    run = client(store).get_run(rec.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["sciwm.error"].startswith(error[: record_module.ERROR_TAG_MAX])
    assert "error.txt" in run.data.tags["sciwm.error"]
    path = client(store).download_artifacts(rec.run_id, "error.txt", str(tmp_path))
    assert Path(path).read_text() == error


def test_listed_files_become_run_artifacts(
    store: RecordStore, campaign: str, tmp_path: Path
) -> None:
    traj = tmp_path / "trajectory.npz"
    traj.write_bytes(b"frames" * 100)
    exp = Experiment.create(campaign, 0, {"x": 0.3, "kind": "a"})
    rec = store.record_submitted(store.record_proposal(exp, prediction()), {"job": "8"})
    gone = str(tmp_path / "deleted.npz")
    obs = Observation(
        exp.id, Status.COMPLETED, {"y": 1.0}, 2.0, metadata={"artifacts": [str(traj), gone]}
    )
    store.record_observation(rec, obs)
    store.record_observation(rec, obs)  # recording again logs nothing twice

    names = [a.path for a in client(store).list_artifacts(rec.run_id, "outputs")]
    assert names == ["outputs/trajectory.npz"]
    local = client(store).download_artifacts(rec.run_id, "outputs/trajectory.npz", str(tmp_path))
    assert Path(local).read_bytes() == traj.read_bytes()
    tags = client(store).get_run(rec.run_id).data.tags
    assert tags["sciwm.missing_artifacts"] == gone
    (back,) = store.records(campaign)
    assert back.observation == obs


def test_cancelled_observation_marks_run_killed(store: RecordStore, campaign: str) -> None:
    exp = Experiment.create(campaign, 0, {"x": 0.9, "kind": "b"})
    rec = store.record_submitted(store.record_proposal(exp, None), {"id": 1})
    store.record_observation(rec, Observation(exp.id, Status.CANCELLED, cost=2.0))
    assert client(store).get_run(rec.run_id).info.status == "KILLED"
    with pytest.raises(StoreError, match="completed, failed or cancelled"):
        store.record_observation(rec, Observation(exp.id, Status.RUNNING))
    with pytest.raises(StoreError, match="cannot be recorded on the record of experiment"):
        store.record_observation(rec, Observation("other", Status.COMPLETED))


def test_records_survive_a_new_store(store: RecordStore, campaign: str) -> None:
    experiments = [Experiment.create(campaign, i, {"x": i / 10, "kind": "a"}) for i in range(5)]
    # record out of order: records() sorts by sequence number
    for exp in reversed(experiments):
        rec = store.record_proposal(exp, prediction(exp.seq))
        if exp.seq < 4:
            rec = store.record_submitted(rec, {"n": exp.seq})
        if exp.seq < 2:
            store.record_observation(
                rec, Observation(exp.id, Status.COMPLETED, {"y": float(exp.seq)}, cost=1.0)
            )
    fresh = RecordStore(store.tracking_uri)
    back = fresh.records(campaign)
    assert [r.experiment for r in back] == experiments
    assert [r.status for r in back] == [Status.COMPLETED] * 2 + [Status.RUNNING] * 2 + [
        Status.PROPOSED
    ]
    assert [r.handle for r in back] == [{"n": i} for i in range(4)] + [None]
    assert back == store.records(campaign)
    assert campaign in fresh.campaigns()
    assert fresh.campaign_spec(campaign).name == campaign
    # a resumed campaign re-proposing an experiment gets the existing record
    assert fresh.record_proposal(experiments[3], None) == back[3]


def test_records_paginate(
    store: RecordStore, campaign: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        store.record_proposal(Experiment.create(campaign, i, {"x": 0.0, "kind": "a"}), None)
    monkeypatch.setattr(store_module, "PAGE_SIZE", 2)
    assert [r.experiment.seq for r in store.records(campaign)] == list(range(5))


def test_open_campaign_checks_the_space(store: RecordStore) -> None:
    name = f"c{next(_names)}"
    spec, text = make_spec(name)
    exp_id = store.open_campaign(spec, text)
    assert store.open_campaign(spec, text) == exp_id

    bigger, bigger_text = make_spec(name, budget=500.0)  # extending the budget is allowed
    assert store.open_campaign(bigger, bigger_text) == exp_id
    assert store.campaign_spec(name).budget.total == 500.0

    changed, changed_text = make_spec(name, high=2.0)
    with pytest.raises(StoreError, match=r"different search space.*another \[campaign\] name"):
        store.open_campaign(changed, changed_text)
    assert store.campaign_spec(name).budget.total == 500.0  # unchanged by the refusal


def test_long_spec_text_round_trips(store: RecordStore) -> None:
    name = f"c{next(_names)}"
    spec, text = make_spec(name)
    text += "".join(f"# comment line {i} {'.' * 60}\n" for i in range(400))
    store.open_campaign(spec, text)
    exp = client(store).get_experiment_by_name(name)
    assert int(exp.tags["sciwm.spec.parts"]) > 1
    assert store.campaign_spec(name) == spec


def test_unknown_campaign_lists_known_ones(store: RecordStore, campaign: str) -> None:
    with pytest.raises(StoreError, match=rf"no campaign named 'nope'.*{campaign}"):
        store.campaign_spec("nope")
    with pytest.raises(StoreError, match="no campaign named 'nope'"):
        store.records("nope")
    assert "Default" not in store.campaigns()


@pytest.mark.parametrize("kind", ["http", "sqlite"])
def test_unreachable_store_fails_fast_and_clearly(tmp_path: Path, kind: str) -> None:
    if kind == "http":
        uri = "http://127.0.0.1:9"
    else:
        (tmp_path / "a-file").write_text("not a directory")
        uri = f"sqlite:///{tmp_path}/a-file/sub/mlflow.db"
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        RecordStore(uri)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith(f"cannot reach the MLflow tracking store at {uri}: ")
    assert "MLFLOW_TRACKING_URI" in message and "Traceback" not in message
    assert len(message.splitlines()) == 1


def test_store_failing_mid_campaign_raises_store_error(
    store: RecordStore, campaign: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = store.record_proposal(Experiment.create(campaign, 0, {"x": 0.3, "kind": "a"}), None)
    broken = RecordStore(store.tracking_uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    broken._client = MlflowClient("http://127.0.0.1:9")  # the tracking server went away
    with pytest.raises(StoreError, match=r"failed while recording the submission.*resume"):
        broken.record_submitted(rec, {"h": 1})
    ghost = Record(rec.experiment, Status.RUNNING, "0" * 32)
    with pytest.raises(StoreError, match="failed while recording the result"):
        store.record_observation(ghost, Observation(rec.experiment.id, Status.COMPLETED))
    assert store.records(campaign) == [rec]  # nothing recorded was lost


def test_world_model_round_trip(store: RecordStore, campaign: str) -> None:
    spec = store.campaign_spec(campaign)
    assert store.load_world_model(campaign) is None
    experiments = [Experiment.create(campaign, i, {"x": i / 4, "kind": "a"}) for i in range(4)]
    observations = [
        Observation(e.id, Status.COMPLETED, {"y": float(e.seq) ** 2}, cost=1.0 + e.seq)
        for e in experiments
    ]
    model = ConstantWorldModel(spec.space(), spec.outcome_names)
    model.fit(experiments[:2], observations[:2])
    assert store.log_world_model(campaign, model, 0) == "world_model/0000"
    model.fit(experiments, observations)
    assert store.log_world_model(campaign, model, 1) == "world_model/0001"

    loaded = RecordStore(store.tracking_uri).load_world_model(campaign)
    assert isinstance(loaded, ConstantWorldModel)
    assert loaded.summary is not None and loaded.summary.n_observations == 4
    query = [{"x": 0.3, "kind": "b"}]
    assert loaded.predict(query) == model.predict(query)
    assert len(runs_of(store, campaign, "world_model")) == 1
    assert runs_of(store, campaign) == []  # world-model runs are not experiments
    artifacts = client(store).list_artifacts(
        runs_of(store, campaign, "world_model")[0].info.run_id, "world_model"
    )
    assert [a.path for a in artifacts] == ["world_model/0000", "world_model/0001"]


def test_campaign_metrics(store: RecordStore, campaign: str) -> None:
    for step, best in enumerate([1.0, 2.5, 2.5]):
        store.log_campaign_metrics(campaign, step, {"best_so_far": best, "spent": step * 3.0})
    store.log_campaign_metrics(campaign, 3, {"best_so_far": float("nan"), "spent": 9.0})
    (run,) = runs_of(store, campaign, "summary")
    history = client(store).get_metric_history(run.info.run_id, "best_so_far")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 2.5), (2, 2.5)]
    assert len(client(store).get_metric_history(run.info.run_id, "spent")) == 4


def test_artifacts_live_next_to_the_sqlite_file(store: RecordStore, campaign: str) -> None:
    exp = client(store).get_experiment_by_name(campaign)
    db_dir = Path(store.tracking_uri.removeprefix("sqlite:///")).parent
    assert exp.artifact_location == (db_dir / "mlruns" / campaign).as_uri()


def test_campaign_summary() -> None:
    def rec(seq: int, status: Status, y: float | None = None, cost: float | None = None) -> Record:
        exp = Experiment.create("s", seq, {"x": seq / 10})
        obs = None
        if status.finished:
            outcomes = {} if y is None else {"y": y}
            obs = Observation(exp.id, status, outcomes, cost)
        return Record(exp, status, f"run{seq}", observation=obs)

    records = [
        rec(0, Status.COMPLETED, 2.0, 1.0),
        rec(1, Status.COMPLETED, 5.0, 2.0),
        rec(2, Status.FAILED, None, 0.5),
        rec(3, Status.COMPLETED, float("nan"), 1.0),
        rec(4, Status.RUNNING),
        rec(5, Status.PROPOSED),
    ]
    up = campaign_summary(records, maximize=True, objective="y")
    assert up["best_value"] == 5.0 and up["best_parameters"] == {"x": 0.1}
    assert up["best_experiment_id"] == records[1].experiment.id
    assert up["spent"] == 4.5 and up["n_experiments"] == 6
    assert up["counts"] == {
        "proposed": 1,
        "running": 1,
        "completed": 3,
        "failed": 1,
        "cancelled": 0,
    }
    down = campaign_summary(records, maximize=False, objective="y")
    assert down["best_value"] == 2.0
    empty = campaign_summary([], maximize=True, objective="y")
    assert empty["best_value"] is None and empty["spent"] == 0.0


def test_store_waits_out_another_process_creating_the_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening a new SQLite store race to create its tables; the loser retries."""
    from sciwm.store import connection

    calls = []
    real = connection.MlflowClient

    def racing_client(uri: str) -> MlflowClient:
        calls.append(uri)
        if len(calls) <= 2:
            raise RuntimeError(
                "(sqlite3.OperationalError) table _alembic_tmp_model_version_tags already exists"
            )
        return real(uri)

    monkeypatch.setattr(connection, "MlflowClient", racing_client)
    uri = f"sqlite:///{tmp_path}/race.db"
    assert connection.connect(uri) is not None
    assert len(calls) == 3

    calls.clear()
    monkeypatch.setattr(connection, "MlflowClient", lambda uri: racing_client(uri + "x"))
    with pytest.raises(StoreError, match="cannot reach"):  # other errors are not retried
        connection.connect("http://127.0.0.1:9/")
    assert len(calls) == 1


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Real processes racing to create the same store's tables (the lock makes them queue)."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path}/shared.db"
    code = f"from sciwm.store import RecordStore; RecordStore({uri!r}).campaigns()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert RecordStore(uri).campaigns() == []
