"""The HTTP lab connector against the real reference lab server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_connectors.http_lab import HTTPLabConnector, redact
from sciwm.cli import main
from sciwm.connector import Connector
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Experiment, Status
from sciwm.testing.connector_suite import ConnectorConformance, wait_finished
from tests.lab_connectors.http_lab_fixtures import (
    TOKEN,
    TOKEN_ENV,
    RunningLab,
    running_lab,
    self_signed,
)

pytestmark = pytest.mark.timeout(60)


def exp(x: float = 0.5, seq: int = 0, **params: object) -> Experiment:
    return Experiment.create("http-test", seq, {"x": x, **params})


def connect(lab_url: str, workdir: Path, **settings: object) -> HTTPLabConnector:
    base = {"url": lab_url, "token_env": TOKEN_ENV, "retries": 2, "backoff_s": 0.02}
    return HTTPLabConnector(workdir, **{**base, **settings})


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RunningLab]:
    with running_lab(tmp_path / "lab") as running:
        yield running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestHTTPLabConformance(ConnectorConformance):
    @pytest.fixture(autouse=True)
    def _lab(self, lab: RunningLab) -> None:
        self.lab = lab

    def make_connector(self, workdir: Path) -> Connector:
        return connect(self.lab.url, workdir)

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
        return self.lab.runs(experiment.id)


# -- results -----------------------------------------------------------------------------------


def test_outcome_and_cost_come_from_the_lab(lab: RunningLab, tmp_path: Path) -> None:
    conn = connect(lab.url, tmp_path / "c")
    handle = conn.submit(exp(0.7, delay=0.0))
    wait_finished(conn, handle)
    obs = conn.fetch(handle)
    assert obs.status is Status.COMPLETED
    assert obs.outcomes == {"y": pytest.approx(-((0.7 - 0.3) ** 2))}
    assert obs.cost is not None and 0 < obs.cost < 5
    assert obs.metadata["lab"] == lab.url


def test_queued_experiments_poll_as_running_and_capacity_counts_them(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", parallelism=1) as lab:
        conn = connect(lab.url, tmp_path / "c")
        handles = [conn.submit(exp(0.1 * i, seq=i, delay=1.0)) for i in range(3)]
        assert conn.capacity() == 0
        assert [conn.poll(h) for h in handles] == [Status.RUNNING] * 3
        assert lab.backend.capacity().queued == 2
        for h in handles:
            assert wait_finished(conn, h, 30) is Status.COMPLETED
        assert conn.capacity() == 1
        assert [lab.runs(h["experiment_id"]) for h in handles] == [1, 1, 1]


def test_the_same_id_with_other_parameters_is_refused(lab: RunningLab, tmp_path: Path) -> None:
    conn = connect(lab.url, tmp_path / "c")
    first = exp(0.5, delay=0.0)
    conn.submit(first)
    clash = Experiment(first.id, first.campaign, first.seq, {"x": 0.9, "delay": 0.0})
    with pytest.raises(ConnectorError, match="HTTP 409.*already submitted with other content"):
        conn.submit(clash)
    assert lab.runs(first.id) <= 1


# -- credentials and secrets -------------------------------------------------------------------


def test_a_wrong_token_is_refused_without_echoing_it(
    lab: RunningLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-value")
    conn = connect(lab.url, tmp_path / "c")
    with pytest.raises(ConnectorError) as info:
        conn.submit(exp())
    message = str(info.value)
    assert "refused the credentials (HTTP 401" in message and f"${TOKEN_ENV}" in message
    assert "wrong-token-value" not in message
    assert not isinstance(info.value, BackendUnavailable)


def test_the_token_is_never_in_settings_handles_or_findings(
    lab: RunningLab, tmp_path: Path
) -> None:
    conn = connect(lab.url, tmp_path / "c")
    handle = conn.submit(exp(delay=0.0))
    found = conn.check()
    assert all(f.ok for f in found), found
    for text in (repr(conn.settings), repr(handle), repr(found), repr(vars(conn.cfg))):
        assert TOKEN not in text


def test_a_missing_token_variable_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ConnectorError, match=f"environment variable '{TOKEN_ENV}'.*not set"):
        connect("http://127.0.0.1:9", tmp_path)


def test_no_token_against_a_lab_that_wants_one(lab: RunningLab, tmp_path: Path) -> None:
    conn = HTTPLabConnector(tmp_path, url=lab.url, retries=0)
    with pytest.raises(ConnectorError, match="this lab needs a token: name the variable"):
        conn.capacity()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "https://lab.example.org", "timout_s": 3}, "timout_s: Extra inputs"),
        ({"url": "https://lab.example.org", "timeout_s": 0}, "timeout_s: Input should be greater"),
        ({}, "url: Field required"),
        ({"url": "ftp://lab.example.org"}, "is not an http(s) URL"),
        ({"url": "http://lab.example.org:8750"}, "refusing plain http:// to lab.example.org"),
        ({"url": "https://lab.example.org", "ca_bundle": "/no/such.pem"}, "does not exist"),
    ],
)
def test_bad_settings_say_what_is_wrong(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConnectorError) as info:
        HTTPLabConnector(tmp_path, **settings)
    assert message in str(info.value)


def test_credentials_in_the_url_are_refused_and_redacted(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError) as info:
        HTTPLabConnector(tmp_path, url="https://alice:hunter2@lab.example.org/")
    assert "hunter2" not in str(info.value) and "***@lab.example.org" in str(info.value)
    assert redact("https://a:b@h:1/p") == "https://***@h:1/p"
    assert redact("https://h/p") == "https://h/p"


def test_plain_http_to_another_host_is_allowed_when_asked(tmp_path: Path) -> None:
    conn = HTTPLabConnector(tmp_path, url="http://lab.example.org:8750", allow_http=True)
    assert conn.url == "http://lab.example.org:8750"
    conn.close()


# -- transient failures ------------------------------------------------------------------------


def test_a_lab_that_is_down_is_unavailable_not_broken(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    conn = connect(url, tmp_path, retries=2, backoff_s=0.01)
    with pytest.raises(BackendUnavailable) as info:
        conn.capacity()
    message = str(info.value)
    assert url in message and "failed 3 time(s)" in message and "ConnectError" in message
    findings = conn.check()
    assert [(f.aspect, f.ok) for f in findings] == [("reachable", False)]
    assert "start the lab" in (findings[0].fix or "")


def test_transient_faults_are_retried_until_they_pass(tmp_path: Path) -> None:
    faults = {"rate": 0.5, "kinds": ("503", "502", "drop"), "seed": 3}
    with running_lab(tmp_path / "lab", faults=faults) as lab:
        conn = connect(lab.url, tmp_path / "c", retries=8, backoff_s=0.01, max_backoff_s=0.05)
        experiments = [exp(0.05 * i, seq=i, delay=0.0) for i in range(6)]
        handles = [conn.submit(e) for e in experiments]
        for h in handles:
            assert wait_finished(conn, h, 30) is Status.COMPLETED
            assert conn.fetch(h).status is Status.COMPLETED
        assert sum(lab.faults.counts.values()) >= 5  # faults really happened
        assert [lab.runs(e.id) for e in experiments] == [1] * 6  # and nothing ran twice


def test_a_reply_past_the_time_out_is_retried_then_unavailable(tmp_path: Path) -> None:
    faults = {"rate": 1.0, "kinds": ("slow",), "slow_s": 1.0}
    with running_lab(tmp_path / "lab", faults=faults) as lab:
        conn = connect(lab.url, tmp_path / "c", timeout_s=0.2, retries=1, backoff_s=0.01)
        with pytest.raises(BackendUnavailable, match="timed out"):
            conn.capacity()


def test_a_reply_outside_the_protocol_is_a_clear_error(tmp_path: Path) -> None:
    faults = {"rate": 1.0, "kinds": ("malformed",), "seed": 1}
    with running_lab(tmp_path / "lab", faults=faults) as lab:
        conn = connect(lab.url, tmp_path / "c", retries=1, backoff_s=0.01)
        with pytest.raises(ConnectorError) as info:
            conn.capacity()
    message = str(info.value)
    assert not isinstance(info.value, BackendUnavailable)
    assert "GET /v1/capacity" in message and "not a valid Capacity" in message
    assert "does not follow the sciwm HTTP lab protocol" in message


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_with_the_labs_ca_bundle_and_without_it(tmp_path: Path) -> None:
    ca, cert, key = self_signed(tmp_path / "tls")
    with running_lab(tmp_path / "lab", tls=(cert, key)) as lab:
        assert lab.url.startswith("https://127.0.0.1:")
        conn = connect(lab.url, tmp_path / "c", ca_bundle=str(ca))
        handle = conn.submit(exp(0.3, delay=0.0))
        assert wait_finished(conn, handle) is Status.COMPLETED
        assert conn.fetch(handle).outcomes == {"y": pytest.approx(0.0)}
        assert ("tls", True) in [(f.aspect, f.ok) for f in conn.check()]
        unverified = connect(lab.url, tmp_path / "d")
        with pytest.raises(ConnectorError, match="does not verify.*set ca_bundle") as info:
            unverified.capacity()
        assert not isinstance(info.value, BackendUnavailable)  # not retried as transient
        found = unverified.check()
        assert found[0].aspect == "reachable" and not found[0].ok
        assert "ca_bundle" in (found[0].fix or "")


# -- sciwm connectors check http ----------------------------------------------------------------


def test_connectors_check_http(lab: RunningLab, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["connectors", "check", "http", "--set", f"url={lab.url}"]
    assert main([*args, "--set", f"token_env={TOKEN_ENV}"]) == 0
    out = capsys.readouterr().out
    assert "ok    credentials" in out and TOKEN not in out
    assert main(args) == 2  # no token
    assert "FAIL  credentials" in capsys.readouterr().out
    down = f"http://127.0.0.1:{free_port()}"
    assert main(["connectors", "check", "http", "--set", f"url={down}"]) == 2
    assert "FAIL  reachable" in capsys.readouterr().out
