"""Faults of a campaign on the HTTP lab: a real reference lab server on loopback, a real store.

Idempotent submission (no experiment id ever makes a second job, even when replies are lost),
reconciliation on resume (what finished while sciwm was down is collected), and a lab that is
down pausing dispatch instead of failing experiments.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from flows.campaign import build_loop
from sciwm.errors import BackendUnavailable
from sciwm.experiment import Experiment, Status
from tests.flows.test_faults import campaign, records
from tests.lab_connectors.http_lab_fixtures import TOKEN, TOKEN_ENV, running_lab

pytestmark = pytest.mark.timeout(120)

BOWL = "tests.flows.fault_fns:bowl"


def http_connector(url: str, **settings: object) -> str:
    base = {"retries": 6, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}
    lines = [f'url = "{url}"', f'token_env = "{TOKEN_ENV}"']
    lines += [f"{k} = {v}" for k, v in {**base, **settings}.items()]
    return '[connector]\ntype = "http"\n\n[connector.settings]\n' + "\n".join(lines) + "\n\n"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, campaign_dir: Path) -> Path:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    log = campaign_dir / "calls.log"
    monkeypatch.setenv("SCIWM_TEST_CALL_LOG", str(log))  # the lab's workers inherit it
    return log


def calls(folder: Path) -> Counter[str]:
    path = folder / "calls.log"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_campaign_through_a_faulty_lab_loses_and_duplicates_nothing(
    campaign_dir: Path,
) -> None:
    faults = {"rate": 0.2, "slow_s": 0.6, "seed": 5}
    with running_lab(campaign_dir / "lab", function=BOWL, faults=faults) as lab:
        conn = http_connector(lab.url, timeout_s=0.3)
        spec = campaign(campaign_dir, "h-faulty", "bowl", connector=conn, max_experiments=8)
        result = build_loop(spec, campaign_dir).run()
        injected = sum(lab.faults.counts.values())
    recs = records(campaign_dir, "h-faulty")
    assert injected >= 5, lab.faults.counts
    assert result.n_experiments == 8 == len(recs) and result.n_completed == 8  # none lost
    assert sorted(calls(campaign_dir).values()) == [1] * 8  # none ran twice
    assert set(calls(campaign_dir)) == {r.experiment.id for r in recs}


def test_resume_collects_what_finished_while_sciwm_was_down(campaign_dir: Path) -> None:
    with running_lab(campaign_dir / "lab", function=BOWL) as lab:
        spec = campaign(
            campaign_dir, "h-resume", "bowl", connector=http_connector(lab.url), max_experiments=5
        )
        first = build_loop(spec, campaign_dir)
        while len(first.state.running) < 2:  # two experiments submitted, then sciwm "dies"
            first.step()
        submitted = set(first.state.running)
        # it also died between recording a proposal and confirming its submission
        ghost = Experiment.create(
            "h-resume", first.state.next_seq, {"x": 0.3, "y": 0.7, "kind": "a"}
        )
        first.store.record_proposal(ghost, None)
        first.connector.submit(ghost)
        del first
        deadline = time.monotonic() + 30
        while any(
            lab.backend.status(i).status.value != "completed" for i in submitted | {ghost.id}
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = build_loop(spec, campaign_dir)
        assert {ghost.id} == set(second.state.unsubmitted) and submitted == set(
            second.state.running
        )
        collected = second.poll()  # finished while sciwm was down: collected at once
        assert {r.experiment.id for r in collected} == submitted
        result = second.run()
    recs = records(campaign_dir, "h-resume")
    assert len(recs) == result.n_experiments == 5 and result.n_completed == 5
    assert next(r for r in recs if r.experiment.id == ghost.id).status is Status.COMPLETED
    assert sorted(calls(campaign_dir).values()) == [1] * 5  # the ghost's resubmit started nothing


def test_a_lab_that_is_down_pauses_dispatch_until_it_is_back(
    campaign_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spec = campaign(
        campaign_dir, "h-down", "bowl", connector=http_connector(url, retries=1),
        faults="unavailable_wait_s = 60", max_experiments=4,
    )  # fmt: skip
    up = threading.Event()
    stop = threading.Event()

    def start_late() -> None:
        time.sleep(1.5)
        with running_lab(campaign_dir / "lab", function=BOWL, port=port):
            up.set()
            stop.wait(60)

    loop = build_loop(spec, campaign_dir)  # the store is ready; the lab is not
    thread = threading.Thread(target=start_late, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sciwm.campaign"):
            result = loop.run()
    finally:
        stop.set()
        thread.join(10)
    assert up.is_set()
    assert "dispatch paused (no experiment failed, no budget spent)" in caplog.text
    assert "dispatch resumes" in caplog.text
    recs = records(campaign_dir, "h-down")
    assert result.n_failed == 0 and result.n_completed == 4 == len(recs)


def test_a_lab_down_for_too_long_stops_the_campaign_resumably(campaign_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    spec = campaign(
        campaign_dir, "h-gone", "bowl", connector=http_connector(url, retries=0),
        faults="unavailable_wait_s = 0.5", max_experiments=4,
    )  # fmt: skip
    with pytest.raises(BackendUnavailable) as info:
        build_loop(spec, campaign_dir).run()
    message = str(info.value)
    assert "stayed unavailable" in message and "run `sciwm campaign run` again" in message
    assert url in message
    assert all(r.status is not Status.FAILED for r in records(campaign_dir, "h-gone"))
