"""The local connector: the conformance suite plus what only a local process can show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab_connectors import _local_worker as worker
from lab_connectors.local import LocalConnector
from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.registry import build_connector
from sciwm.spec import ConnectorSpec
from sciwm.testing.connector_suite import ConnectorConformance, wait_finished

pytestmark = pytest.mark.timeout(60)

FNS = "tests.lab_connectors.fixtures_fns"
ROOT = Path(__file__).resolve().parents[2]


def make(workdir: Path, fn: str = "quadratic", **settings: object) -> LocalConnector:
    return LocalConnector(workdir, function=f"{FNS}:{fn}", **settings)


def runs(workdir: Path, experiment: Experiment) -> int:
    path = workdir / experiment.id / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_to_end(conn: LocalConnector, experiment: Experiment):
    handle = conn.submit(experiment)
    wait_finished(conn, handle, 30)
    return conn.fetch(handle)


def exp(x: float = 0.5, seq: int = 0, **params: object) -> Experiment:
    return Experiment.create("local-test", seq, {"x": x, **params})


class TestLocalConformance(ConnectorConformance):
    def make_connector(self, workdir: Path) -> Connector:
        return LocalConnector(workdir, function=f"{FNS}:slow_quadratic", timeout_s=20)

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        return exp(0.5, delay=0.3)

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        return exp(0.25, fail=True)

    @pytest.fixture
    def failing_message(self) -> str:
        return "ValueError: boom at x=0.25"

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        return ["y"]

    @pytest.fixture
    def slow_experiment(self) -> Experiment:
        return exp(0.1, seq=7, delay=15.0)

    def times_run(self, connector: Connector, experiment: Experiment) -> int | None:
        return runs(connector.workdir, experiment)


# -- outcomes and cost -------------------------------------------------------------------------


def test_quadratic_value_and_wall_time(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path), exp(0.7))
    assert obs.status is Status.COMPLETED
    assert obs.outcomes == {"y": pytest.approx(-((0.7 - 0.3) ** 2))}
    assert 0 < obs.cost < 5
    assert obs.metadata["cost_source"] == "wall_time"
    assert obs.cost == obs.metadata["wall_time_s"]
    assert obs.started_at <= obs.finished_at


def test_bare_number_is_named_by_outcome_setting(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "bare", outcome="accuracy"), exp(0.25))
    assert obs.status is Status.COMPLETED
    assert obs.outcomes == {"accuracy": 0.5}


def test_reported_cost_replaces_wall_time(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "reported_cost"), exp(0.4))
    assert obs.status is Status.COMPLETED
    assert obs.outcomes == {"y": 0.4}
    assert obs.cost == 12.5
    assert obs.metadata["cost_source"] == "reported" and obs.metadata["gpu"] == "none"


def test_a_flat_cost_key_is_the_cost_not_an_outcome(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "flat_cost"), exp(0.4))
    assert obs.status is Status.COMPLETED
    assert obs.outcomes == {"y": 0.4}
    assert obs.cost == 3.25 and obs.metadata["cost_source"] == "reported"


def test_a_flat_cost_that_is_not_a_number_fails_showing_the_shape(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "flat_bad_cost"), exp(0.4))
    assert obs.status is Status.FAILED
    assert "cost='cheap'" in obs.error and "{'y': 0.9, 'cost': 12.0}" in obs.error


def test_bad_reported_cost_fails(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "bad_reported_cost"), exp())
    assert obs.status is Status.FAILED
    assert "cost=-1.0" in obs.error


def test_exception_gives_failed_with_message_and_traceback(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "boom"), exp(0.25))
    assert obs.status is Status.FAILED
    assert obs.error == "ValueError: boom at x=0.25"
    assert obs.outcomes == {}
    assert obs.cost is not None and obs.cost > 0
    assert "raise ValueError" in obs.metadata["traceback"]


def test_nan_outcome_fails_naming_it(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "nan_result"), exp(0.5))
    assert obs.status is Status.FAILED
    assert "'y'" in obs.error and "nan" in obs.error
    assert obs.outcomes == {"z": 0.5}  # finite ones are kept, as Observation.checked does


def test_non_numeric_outcome_fails_naming_it(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "not_a_number"), exp())
    assert obs.status is Status.FAILED
    assert "outcome 'y' is not a number" in obs.error


def test_wrong_return_type_fails(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "wrong_type"), exp())
    assert obs.status is Status.FAILED
    assert "returned list" in obs.error and "return a number" in obs.error


def test_env_setting_reaches_the_worker(tmp_path: Path) -> None:
    conn = make(tmp_path, "from_env", env={"SCIWM_TEST_VALUE": "7"})
    obs = run_to_end(conn, exp(0.5))
    assert obs.outcomes == {"objective": 7.5}


# -- time limits, deaths and cancellation ----------------------------------------------------


def test_timeout_gives_failed_observation(tmp_path: Path) -> None:
    conn = make(tmp_path, "sleeper", timeout_s=1)
    t0 = time.monotonic()
    obs = run_to_end(conn, exp())
    assert time.monotonic() - t0 < 10
    assert obs.status is Status.FAILED
    assert "timed out after 1 s" in obs.error and "timeout_s=1" in obs.error
    assert obs.cost == 1.0 and obs.metadata["timed_out"] is True


def test_budget_cap_stops_the_experiment(tmp_path: Path) -> None:
    conn = make(tmp_path, "sleeper", timeout_s=600)
    experiment = Experiment.create("local-test", 0, {"x": 0.5}, max_cost=0.5)
    obs = run_to_end(conn, experiment)
    assert obs.status is Status.FAILED
    assert "max_cost=0.5" in obs.error
    assert obs.cost == 0.5


def test_connector_kills_a_worker_whose_watchdog_cannot_run(tmp_path: Path) -> None:
    conn = make(tmp_path, "gil_hog", timeout_s=0.5, grace_s=0.5)
    handle = conn.submit(exp())
    status = wait_finished(conn, handle, 15)
    assert status is Status.FAILED
    obs = conn.fetch(handle)
    assert "connector killed it" in obs.error
    assert not Path(f"/proc/{handle['pid']}").exists() or _state(handle["pid"]) == "Z"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def test_worker_death_gives_failed_with_exit_status(tmp_path: Path) -> None:
    obs = run_to_end(make(tmp_path, "suicide"), exp())
    assert obs.status is Status.FAILED
    assert "died without a result" in obs.error and "signal 9" in obs.error


def test_cancel_running_kills_the_worker(tmp_path: Path) -> None:
    conn = make(tmp_path, "sleeper")
    handle = conn.submit(exp())
    while not (tmp_path / exp().id / "runs.txt").exists():
        time.sleep(0.02)
    conn.cancel(handle)
    assert conn.poll(handle) is Status.CANCELLED
    obs = conn.fetch(handle)
    assert obs.status is Status.CANCELLED and obs.cost > 0
    assert _state(handle["pid"]) in ("gone", "Z")
    assert conn.capacity() == 1


def test_capacity_counts_running_experiments(tmp_path: Path) -> None:
    conn = make(tmp_path, "slow_quadratic", parallelism=2)
    assert conn.capacity() == 2
    handle = conn.submit(exp(0.5, delay=0.5))
    assert conn.capacity() == 1
    wait_finished(conn, handle, 10)
    assert conn.capacity() == 2


def test_fetch_before_finish_raises(tmp_path: Path) -> None:
    conn = make(tmp_path, "sleeper")
    handle = conn.submit(exp())
    with pytest.raises(ConnectorError, match="poll"):
        conn.fetch(handle)
    conn.cancel(handle)


# -- crashes of the campaign process ---------------------------------------------------------

_CAMPAIGN = """
import json, sys, time
from lab_connectors.local import LocalConnector
from sciwm.experiment import Experiment
conn = LocalConnector(sys.argv[1], function="{fns}:slow_quadratic")
handle = conn.submit(Experiment.create("local-test", 0, {{"x": 0.5, "delay": 1.5}}))
print(json.dumps(handle), flush=True)
time.sleep(600)
"""


def test_reattach_after_kill_9_of_the_campaign(tmp_path: Path) -> None:
    script = tmp_path / "campaign.py"
    script.write_text(textwrap.dedent(_CAMPAIGN.format(fns=FNS)))
    workdir = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    campaign = subprocess.Popen(
        [sys.executable, str(script), str(workdir)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        handle = json.loads(campaign.stdout.readline())
    finally:
        campaign.send_signal(signal.SIGKILL)
        campaign.wait()
    resumed = make(workdir, "slow_quadratic")
    experiment = Experiment.create("local-test", 0, {"x": 0.5, "delay": 1.5})
    assert resumed.poll(handle) is Status.RUNNING  # the worker outlived its parent
    assert resumed.submit(experiment) == handle
    wait_finished(resumed, handle, 20)
    obs = resumed.fetch(handle)
    assert obs.status is Status.COMPLETED and obs.outcomes["y"] == pytest.approx(-0.04)
    assert runs(workdir, experiment) == 1


def test_lost_handle_does_not_run_twice(tmp_path: Path) -> None:
    conn = make(tmp_path, "slow_quadratic")
    experiment = exp(0.5, delay=0.5)
    handle = conn.submit(experiment)
    (tmp_path / experiment.id / "handle.json").unlink()  # crash before the handle was stored
    again = make(tmp_path, "slow_quadratic").submit(experiment)
    assert again["experiment_id"] == experiment.id
    wait_finished(conn, again, 10)
    assert runs(tmp_path, experiment) == 1
    assert conn.fetch(handle) == conn.fetch(again)


def test_directory_without_handle_is_started(tmp_path: Path) -> None:
    experiment = exp(0.5)
    (tmp_path / experiment.id).mkdir()  # crash between mkdir and starting the worker
    obs = run_to_end(make(tmp_path), experiment)
    assert obs.status is Status.COMPLETED and runs(tmp_path, experiment) == 1


def test_second_worker_on_a_claimed_directory_exits(tmp_path: Path) -> None:
    conn = make(tmp_path)
    experiment = exp(0.5)
    wait_finished(conn, conn.submit(experiment), 10)
    rerun = subprocess.run(
        [sys.executable, "-m", "lab_connectors._local_worker", str(tmp_path / experiment.id)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == worker.EXIT_ALREADY_CLAIMED
    assert "already claimed" in rerun.stderr
    assert runs(tmp_path, experiment) == 1


def test_result_file_matches_observation_format(tmp_path: Path) -> None:
    conn = make(tmp_path)
    obs = run_to_end(conn, exp())
    stored = json.loads((tmp_path / exp().id / "result.json").read_text())
    assert stored == obs.to_dict()
    assert {worker._COMPLETED, worker._FAILED} <= {s.value for s in Status}


# -- settings and loading -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("no_colon_here", "'package.module:function'"),
        ("tests.lab_connectors.no_such_module:fn", "tests.lab_connectors.no_such_module"),
        (f"{FNS}:missing", "has no attribute 'missing'"),
        (f"{FNS}:NOT_CALLABLE", "not a callable"),
    ],
)
def test_bad_function_path_fails_early(tmp_path: Path, function: str, message: str) -> None:
    with pytest.raises(ConnectorError) as info:
        LocalConnector(tmp_path, function=function)
    assert message in str(info.value)
    assert function.partition(":")[0] in str(info.value)


def test_function_path_is_checked_with_the_workers_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "my_lab_xyz.py").write_text("def f(x):\n    return {'y': x}\n")
    with pytest.raises(ConnectorError, match="my_lab_xyz"):
        LocalConnector(tmp_path / "w", function="my_lab_xyz:f", env={"PYTHONHOME_X": "1"})
    conn = LocalConnector(
        tmp_path / "w", function="my_lab_xyz:f", env={"PYTHONPATH": str(tmp_path / "extra")}
    )
    obs = run_to_end(conn, exp(0.5))
    assert obs.status is Status.COMPLETED and obs.outcomes == {"y": 0.5}
    with pytest.raises(ConnectorError, match="has no attribute 'g'"):
        LocalConnector(
            tmp_path / "w", function="my_lab_xyz:g", env={"PYTHONPATH": str(tmp_path / "extra")}
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "needs the setting 'function'"),
        ({"function": f"{FNS}:quadratic", "functon": "x"}, "unknown setting(s) ['functon']"),
        ({"function": f"{FNS}:quadratic", "timeout_s": 0}, "timeout_s=0"),
        ({"function": f"{FNS}:quadratic", "parallelism": 0}, "parallelism=0"),
        ({"function": f"{FNS}:quadratic", "env": {"A": 1}}, "env="),
        ({"function": f"{FNS}:quadratic", "python": "/no/such/python"}, "no such executable"),
    ],
)
def test_bad_settings(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ConnectorError) as info:
        LocalConnector(tmp_path, **settings)
    assert message in str(info.value)


def load_connector(ref: str, workdir: Path, settings: dict | None = None) -> Connector:
    """The registry's factory on a ``[connector]`` table of type ``ref``."""
    return build_connector(ConnectorSpec(type=ref, settings=settings or {}), workdir)


def test_load_connector_by_name_and_path(tmp_path: Path) -> None:
    settings = {"function": f"{FNS}:quadratic", "timeout_s": 5}
    by_name = load_connector("local", tmp_path / "a", settings)
    by_path = load_connector("lab_connectors.local:LocalConnector", tmp_path / "b", settings)
    assert type(by_name) is type(by_path) is LocalConnector
    assert by_name.timeout_s == 5.0


def test_load_connector_errors(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="unknown connector type 'nope'"):
        load_connector("nope", tmp_path)
    with pytest.raises(ConnectorError, match="not a subclass"):
        load_connector(f"{FNS}:quadratic", tmp_path)
    with pytest.raises(ConnectorError, match="does not implement"):
        load_connector("sciwm.connector:Connector", tmp_path)
    with pytest.raises(ConnectorError, match="needs the setting 'function'"):
        load_connector("local", tmp_path, {})


def test_load_connector_turns_type_errors_into_connector_errors(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="rejected its settings"):
        load_connector(f"{__name__}:_Strict", tmp_path, {"colour": "red"})


class _Strict(Connector):
    """A third-party connector with no settings at all."""

    name = "strict"

    def __init__(self, workdir: str | Path) -> None:
        super().__init__(workdir)

    def submit(self, experiment):  # pragma: no cover - never called
        raise NotImplementedError

    poll = fetch = cancel = submit


def test_malformed_handle(tmp_path: Path) -> None:
    conn = make(tmp_path)
    with pytest.raises(ConnectorError, match="not a local connector handle"):
        conn.poll({"experiment_id": "x"})
    with pytest.raises(ConnectorError, match="does not exist"):
        conn.poll({"experiment_id": "x", "dir": str(tmp_path / "gone"), "pid": 1, "started_at": 0})
