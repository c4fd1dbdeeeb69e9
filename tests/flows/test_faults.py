"""Faults in the campaign loop: real local workers, a real lab server, a real SQLite store."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from flows.campaign import build_loop
from flows.faults import FaultHandler, signature
from sciwm.errors import BackendUnavailable
from sciwm.experiment import Status, canonical_json
from sciwm.spec_faults import FaultsSpec
from sciwm.store import RecordStore, default_tracking_uri
from tests.flows.conftest import write_campaign

pytestmark = pytest.mark.timeout(120)


def campaign(
    folder: Path,
    name: str,
    function: str,
    faults: str = "",
    connector: str | None = None,
    **kwargs: object,
) -> Path:
    """A campaign file around :mod:`tests.flows.fault_fns` with a ``[faults]`` table."""
    path = write_campaign(folder, name, function=function, **kwargs)  # type: ignore[arg-type]
    text = path.read_text().replace("tests.flows.fns:", "tests.flows.fault_fns:")
    if connector is not None:
        text = re.sub(r"\[connector\].*?(?=\[scheduler\])", connector, text, flags=re.S)
    path.write_text(text + f"\n[faults]\nbackoff_s = 0\nmax_backoff_s = 0.2\n{faults}\n")
    return path


def records(folder: Path, name: str) -> list:
    return RecordStore(default_tracking_uri(folder)).records(name)


def by_parameters(recs: list) -> dict[str, list[Status]]:
    out: dict[str, list[Status]] = {}
    for r in recs:
        out.setdefault(canonical_json(r.experiment.parameters), []).append(r.status)
    return out


# -- the same failure everywhere, and bad return values -------------------------------------------


def test_a_campaign_whose_every_experiment_fails_alike_stops_after_a_few(
    campaign_dir: Path,
) -> None:
    spec = campaign(campaign_dir, "f-signature", "wrong_signature", max_experiments=40)
    result = build_loop(spec, campaign_dir).run()
    assert "the first 3 experiments all failed the same way" in result.stop_reason
    assert "TypeError" in result.stop_reason and "unexpected keyword argument" in result.stop_reason
    assert "fn(x=..., y=..., kind=...)" in result.stop_reason
    assert 3 <= result.n_experiments <= 3 + 2  # at most one more batch was already running
    recs = records(campaign_dir, "f-signature")
    assert len(recs) == result.n_experiments and all(r.status is Status.FAILED for r in recs)
    assert result.spent <= result.budget


@pytest.mark.slow
def test_the_same_failure_stop_counts_this_run_only(campaign_dir: Path) -> None:
    spec = campaign(campaign_dir, "f-resume", "wrong_signature", max_experiments=40)
    first = build_loop(spec, campaign_dir).run()
    spec.write_text(spec.read_text().replace("fault_fns:wrong_signature", "fault_fns:bowl"))
    again = build_loop(spec, campaign_dir).run()  # fixed: the campaign goes on and completes
    assert again.n_completed >= 1 and again.n_experiments > first.n_experiments


def test_a_flat_cost_key_is_charged_as_the_cost(campaign_dir: Path) -> None:
    spec = campaign(campaign_dir, "f-flat", "bowl", max_experiments=4, initial=4)
    result = build_loop(spec, campaign_dir).run()
    assert result.n_completed == 4
    for r in records(campaign_dir, "f-flat"):
        assert set(r.observation.outcomes) == {"f"}
        assert r.observation.cost == pytest.approx(0.01 + r.experiment.parameters["x"])
        assert r.observation.metadata["cost_source"] == "reported"
    assert result.spent == pytest.approx(
        sum(r.observation.cost for r in records(campaign_dir, "f-flat"))
    )


def test_a_budget_smaller_than_one_experiment(campaign_dir: Path) -> None:
    spec = campaign(campaign_dir, "f-tiny", "slow", budget=0.05, max_experiments=20)
    result = build_loop(spec, campaign_dir).run()
    recs = records(campaign_dir, "f-tiny")
    assert result.n_completed == 0 and len(recs) == result.n_experiments >= 1
    assert result.spent <= 0.05 + 1e-9  # the invariant holds: every run was stopped at its cap
    assert all("budget cap" in (r.observation.error or "") for r in recs)
    assert "budget" in result.stop_reason


# -- retries, poison experiments, time-outs ------------------------------------------------------


def test_a_transient_failure_is_retried_and_then_passes(
    campaign_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIWM_TEST_MARKS", str(campaign_dir / "marks"))
    spec = campaign(
        campaign_dir, "f-flaky", "flaky", max_experiments=6, initial=6, acquisition="random"
    )
    result = build_loop(spec, campaign_dir).run()
    recs = records(campaign_dir, "f-flaky")
    groups = list(by_parameters(recs).values())
    assert result.n_experiments == 6 == len(recs)
    # every first try died; each was tried again and passed, unless the cap came first
    assert all(g in ([Status.FAILED, Status.COMPLETED], [Status.FAILED]) for g in groups)
    assert groups.count([Status.FAILED]) <= 2 and result.n_completed >= 2
    failed = [r for r in recs if r.status is Status.FAILED]
    assert all("died without a result" in r.observation.error for r in failed)


def test_a_poison_experiment_fails_max_attempts_times_and_the_campaign_goes_on(
    campaign_dir: Path,
) -> None:
    spec = campaign(
        campaign_dir, "f-poison", "poison_above_half", faults="max_attempts = 2",
        max_experiments=8, initial=8, acquisition="random",
    )  # fmt: skip
    result = build_loop(spec, campaign_dir).run()
    recs = records(campaign_dir, "f-poison")
    assert result.n_experiments == 8 == len(recs)
    xs = {canonical_json(r.experiment.parameters): r.experiment.parameters["x"] for r in recs}
    tries = {k: v for k, v in by_parameters(recs).items() if xs[k] > 0.5}
    good = {k: v for k, v in by_parameters(recs).items() if xs[k] <= 0.5}
    assert tries and good
    assert all(v in ([Status.FAILED] * 2, [Status.FAILED]) for v in tries.values())
    assert [Status.FAILED] * 2 in tries.values()  # tried max_attempts times, then left failed
    assert all(v == [Status.COMPLETED] for v in good.values())  # and the campaign went on
    assert result.spent <= result.budget


def test_an_experiment_past_timeout_s_is_cancelled_and_retried(campaign_dir: Path) -> None:
    spec = campaign(
        campaign_dir, "f-hang", "hangs_above_half",
        faults="timeout_s = 1.0\nmax_attempts = 2", max_experiments=4, initial=4,
        acquisition="random",
    )  # fmt: skip
    t0 = time.monotonic()
    result = build_loop(spec, campaign_dir).run()
    assert time.monotonic() - t0 < 60  # not the 60 s each hung run would take
    recs = records(campaign_dir, "f-hang")
    hung = [r for r in recs if r.experiment.parameters["x"] > 0.5]
    assert hung, "the random design should put some x above 0.5"
    for r in hung:
        assert r.status is Status.FAILED and "timed out after" in r.observation.error
        assert "[faults] timeout_s = 1" in r.observation.error
    assert all(len(v) <= 2 for v in by_parameters(recs).values())
    assert result.spent <= result.budget


def test_signature_keeps_numbers_and_drops_ids() -> None:
    assert signature("TypeError: f() got an unexpected keyword argument 'kind'\ntraceback") == (
        "TypeError: f() got an unexpected keyword argument 'kind'"
    )
    assert signature("RuntimeError: broke at x=0.25") != signature("RuntimeError: broke at x=0.75")
    assert signature("no result in /w/00003-1f2e3d4c5b") == signature(
        "no result in /w/00004-9a8b7c6d5e"
    )
    assert signature(None) == "no error text"


def test_pause_waits_with_back_off_then_gives_up_resumably() -> None:
    handler = FaultHandler(FaultsSpec(backoff_s=0.01, max_backoff_s=0.02, unavailable_wait_s=0.1))
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="stayed unavailable.*run `sciwm campaign run`"):
        for _ in range(100):
            handler.pause(BackendUnavailable("lab down"))
    assert 0.1 <= time.monotonic() - t0 < 2
