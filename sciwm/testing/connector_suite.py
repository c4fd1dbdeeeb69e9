"""The conformance suite that every connector's tests inherit.

Like Prefect's standard test suites: a test module subclasses :class:`ConnectorConformance`
and supplies what only it knows::

    class TestLocalConformance(ConnectorConformance):
        def make_connector(self, workdir):
            return LocalConnector(workdir, function="tests.lab_connectors.fixtures_fns:quadratic")

        @pytest.fixture
        def good_experiment(self):
            return Experiment.create("conf", 0, {"x": 0.5})

        ...

Required: ``make_connector`` and the fixtures ``good_experiment``, ``failing_experiment``
and ``expected_outcomes``. Optional: ``failing_message`` (text the failing experiment's error
contains), ``slow_experiment`` (one that runs long enough to be cancelled; the cancel test is
skipped without it), ``times_run`` (how often an experiment really ran, when the backend can
tell) and ``finish_timeout_s``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from sciwm.connector import Connector, Handle
from sciwm.experiment import Experiment, Observation, Status


def wait_finished(connector: Connector, handle: Handle, timeout_s: float = 30.0) -> Status:
    """Poll until the experiment has finished; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = connector.poll(handle)
        assert isinstance(status, Status), f"poll returned {status!r}, not a Status"
        if status.finished:
            return status
        assert status is Status.RUNNING, f"poll of a submitted experiment returned {status}"
        if time.monotonic() > deadline:
            raise AssertionError(f"experiment did not finish within {timeout_s} s: {handle}")
        time.sleep(0.05)


@pytest.mark.timeout(120)
class ConnectorConformance:
    """Behaviour every :class:`sciwm.connector.Connector` must show."""

    #: Seconds a good or failing experiment may take before a test gives up.
    finish_timeout_s: ClassVar[float] = 30.0

    # -- what a connector's test module supplies ---------------------------------------------

    def make_connector(self, workdir: Path) -> Connector:
        """A new connector instance on ``workdir`` (called again to simulate a restart)."""
        raise NotImplementedError("the conformance suite needs make_connector(workdir)")

    @pytest.fixture
    def good_experiment(self) -> Experiment:
        """An experiment that completes with :attr:`expected_outcomes`."""
        raise NotImplementedError("the conformance suite needs a good_experiment fixture")

    @pytest.fixture
    def failing_experiment(self) -> Experiment:
        """An experiment whose run raises (its error contains ``failing_message``)."""
        raise NotImplementedError("the conformance suite needs a failing_experiment fixture")

    @pytest.fixture
    def expected_outcomes(self) -> list[str]:
        """Outcome names the good experiment reports."""
        raise NotImplementedError("the conformance suite needs an expected_outcomes fixture")

    @pytest.fixture
    def failing_message(self) -> str:
        """Text that the failing experiment's error contains."""
        return "boom"

    @pytest.fixture
    def slow_experiment(self) -> Experiment | None:
        """An experiment that runs for several seconds, or ``None`` to skip the cancel test."""
        return None

    def times_run(self, connector: Connector, experiment: Experiment) -> int | None:
        """How many times ``experiment`` really ran, or ``None`` if the backend cannot tell."""
        return None

    # -- fixtures built from the above ---------------------------------------------------------

    @pytest.fixture
    def workdir(self, tmp_path: Path) -> Path:
        return tmp_path / "connector"

    @pytest.fixture
    def connector(self, workdir: Path) -> Iterator[Connector]:
        conn = self.make_connector(workdir)
        yield conn
        conn.close()

    def run_to_end(self, connector: Connector, experiment: Experiment) -> Observation:
        handle = connector.submit(experiment)
        wait_finished(connector, handle, self.finish_timeout_s)
        return connector.fetch(handle)

    # -- the checks ------------------------------------------------------------------------------

    def test_is_a_connector(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)
        assert isinstance(type(connector).name, str) and type(connector).name != "abstract"

    def test_handle_is_json_serialisable(
        self, connector: Connector, good_experiment: Experiment
    ) -> None:
        handle = connector.submit(good_experiment)
        assert json.loads(json.dumps(handle)) == handle
        wait_finished(connector, handle, self.finish_timeout_s)

    def test_submit_is_idempotent(self, connector: Connector, good_experiment: Experiment) -> None:
        first = connector.submit(good_experiment)
        assert connector.submit(good_experiment) == first  # while it may still run
        wait_finished(connector, first, self.finish_timeout_s)
        assert connector.submit(good_experiment) == first  # and after it finished
        assert connector.poll(first).finished
        runs = self.times_run(connector, good_experiment)
        assert runs in (None, 1), f"experiment ran {runs} times"

    def test_good_experiment_completes(
        self, connector: Connector, good_experiment: Experiment, expected_outcomes: list[str]
    ) -> None:
        obs = self.run_to_end(connector, good_experiment)
        assert isinstance(obs, Observation)
        assert obs.experiment_id == good_experiment.id
        assert obs.status is Status.COMPLETED, obs.error
        assert obs.error is None
        assert set(expected_outcomes) <= set(obs.outcomes)
        assert all(math.isfinite(obs.outcomes[name]) for name in expected_outcomes)
        assert obs.cost is not None and math.isfinite(obs.cost) and obs.cost > 0
        assert obs.checked(list(expected_outcomes)) is obs

    def test_fetch_is_stable(self, connector: Connector, good_experiment: Experiment) -> None:
        handle = connector.submit(good_experiment)
        wait_finished(connector, handle, self.finish_timeout_s)
        assert connector.fetch(handle) == connector.fetch(handle)
        assert Observation.from_dict(connector.fetch(handle).to_dict()) == connector.fetch(handle)

    def test_failing_experiment_fails_with_its_error(
        self, connector: Connector, failing_experiment: Experiment, failing_message: str
    ) -> None:
        obs = self.run_to_end(connector, failing_experiment)
        assert obs.experiment_id == failing_experiment.id
        assert obs.status is Status.FAILED
        assert obs.error is not None and failing_message in obs.error
        assert obs.cost is None or obs.cost >= 0

    def test_cancel_finished_is_harmless(
        self, connector: Connector, good_experiment: Experiment
    ) -> None:
        handle = connector.submit(good_experiment)
        wait_finished(connector, handle, self.finish_timeout_s)
        before = connector.fetch(handle)
        connector.cancel(handle)
        connector.cancel(handle)
        assert connector.poll(handle) is Status.COMPLETED
        assert connector.fetch(handle) == before

    def test_cancel_running(self, connector: Connector, slow_experiment: Experiment | None) -> None:
        if slow_experiment is None:
            pytest.skip("this connector's tests give no slow_experiment to cancel")
        handle = connector.submit(slow_experiment)
        connector.cancel(handle)
        status = wait_finished(connector, handle, self.finish_timeout_s)
        assert status is Status.CANCELLED
        obs = connector.fetch(handle)
        assert obs.status is Status.CANCELLED and obs.experiment_id == slow_experiment.id
        assert connector.submit(slow_experiment) == handle  # cancelled is not re-run

    def test_capacity_is_non_negative(
        self, connector: Connector, good_experiment: Experiment
    ) -> None:
        before = connector.capacity()
        assert isinstance(before, int) and before >= 0
        handle = connector.submit(good_experiment)
        assert connector.capacity() >= 0
        wait_finished(connector, handle, self.finish_timeout_s)
        after = connector.capacity()
        assert isinstance(after, int) and after >= 0

    def test_handle_survives_a_new_instance(
        self, workdir: Path, good_experiment: Experiment, expected_outcomes: list[str]
    ) -> None:
        first = self.make_connector(workdir)
        handle = json.loads(json.dumps(first.submit(good_experiment)))
        del first  # the campaign process "crashed"; only the stored handle is left
        second = self.make_connector(workdir)
        try:
            assert second.poll(handle) in (Status.RUNNING, Status.COMPLETED)
            assert second.submit(good_experiment) == handle
            wait_finished(second, handle, self.finish_timeout_s)
            obs = second.fetch(handle)
            assert obs.status is Status.COMPLETED and obs.experiment_id == good_experiment.id
            assert set(expected_outcomes) <= set(obs.outcomes)
            runs = self.times_run(second, good_experiment)
            assert runs in (None, 1), f"experiment ran {runs} times"
        finally:
            second.close()
