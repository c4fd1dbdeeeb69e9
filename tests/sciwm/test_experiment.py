"""Experiments (stable ids) and observations (checks, serialisation)."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from sciwm.experiment import Experiment, Observation, Status, canonical_json, experiment_id

PARAMS = {"temperature": 300.0, "solvent": "water", "layers": 3}


# -- ids -------------------------------------------------------------------------------------
def test_id_closed_form() -> None:
    payload = json.dumps(["demo", 7, PARAMS], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    assert experiment_id("demo", 7, PARAMS) == f"00007-{digest}"


def test_id_is_stable_and_order_independent() -> None:
    a = Experiment.create("demo", 3, PARAMS)
    b = Experiment.create("demo", 3, dict(reversed(list(PARAMS.items()))))
    assert a.id == b.id == experiment_id("demo", 3, PARAMS)
    assert a == b


@pytest.mark.parametrize(
    ("campaign", "seq", "params"),
    [
        ("other", 3, PARAMS),
        ("demo", 4, PARAMS),
        ("demo", 3, {**PARAMS, "temperature": 301.0}),
        ("demo", 3, {**PARAMS, "solvent": "dmso"}),
        ("demo", 3, {k: v for k, v in PARAMS.items() if k != "layers"}),
    ],
)
def test_id_differs_when_anything_differs(campaign: str, seq: int, params: dict) -> None:
    assert experiment_id(campaign, seq, params) != experiment_id("demo", 3, PARAMS)


def test_canonical_json_sorted_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_experiment_dict_round_trip() -> None:
    e = Experiment.create("demo", 12, PARAMS, max_cost=3.5)
    data = json.loads(json.dumps(e.to_dict()))
    assert Experiment.from_dict(data) == e
    uncapped = Experiment.create("demo", 1, PARAMS)
    assert Experiment.from_dict(uncapped.to_dict()).max_cost is None


# -- status ----------------------------------------------------------------------------------
def test_status_finished() -> None:
    assert {s for s in Status if s.finished} == {
        Status.COMPLETED,
        Status.FAILED,
        Status.CANCELLED,
    }
    assert str(Status.RUNNING) == "running"  # how it is logged


def test_status_given_as_text_is_coerced() -> None:
    obs = Observation("e1", "completed", {"y": math.nan})  # type: ignore[arg-type]
    assert obs.status is Status.COMPLETED
    assert obs.checked(["y"]).status is Status.FAILED
    with pytest.raises(ValueError, match="done"):
        Observation("e1", "done")  # type: ignore[arg-type]


# -- checked ---------------------------------------------------------------------------------
def test_checked_passes_good_observations_through() -> None:
    obs = Observation("e1", Status.COMPLETED, {"y": 1.5, "z": -2.0}, cost=3.0)
    assert obs.checked(["y", "z"]) is obs


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "n/a", None])
def test_checked_non_finite_outcome_fails(bad: object) -> None:
    obs = Observation("e1", Status.COMPLETED, {"y": bad, "z": 2.0}, cost=4.0, started_at=1.0)  # type: ignore[dict-item]
    out = obs.checked(["y", "z"])
    assert out.status is Status.FAILED
    assert out.error is not None and "non-finite" in out.error and "y=" in out.error
    assert out.outcomes == {"z": 2.0}  # the good outcome is kept
    assert out.cost == 4.0 and out.started_at == 1.0  # a failure still cost something
    assert out.experiment_id == "e1"


def test_checked_missing_outcome_fails() -> None:
    obs = Observation("e1", Status.COMPLETED, {"y": 1.0}, cost=2.0)
    out = obs.checked(["y", "accuracy"])
    assert out.status is Status.FAILED
    assert out.error is not None
    assert "missing" in out.error and "accuracy" in out.error and "['y']" in out.error


def test_checked_reports_missing_and_non_finite_together() -> None:
    out = Observation("e1", Status.COMPLETED, {"y": math.inf}).checked(["y", "z"])
    assert out.error is not None
    assert "missing" in out.error and "'z'" in out.error and "y=inf" in out.error


def test_checked_leaves_failed_and_cancelled_alone() -> None:
    failed = Observation.failed("e1", "segfault", cost=1.0)
    assert failed.checked(["y"]) is failed
    cancelled = Observation("e2", Status.CANCELLED)
    assert cancelled.checked(["y"]) is cancelled


def test_checked_converts_numeric_text_to_float() -> None:
    obs = Observation("e1", Status.COMPLETED, {"y": "0.25", "n": 3})  # type: ignore[dict-item]
    out = obs.checked(["y"])
    assert out.status is Status.COMPLETED
    assert out.outcomes == {"y": 0.25, "n": 3.0}
    assert all(type(v) is float for v in out.outcomes.values())


def test_failed_constructor() -> None:
    obs = Observation.failed("e1", "out of memory", cost=2.5, finished_at=10.0)
    assert obs.status is Status.FAILED
    assert obs.error == "out of memory" and obs.outcomes == {}
    assert obs.cost == 2.5 and obs.finished_at == 10.0


def test_observation_dict_round_trip() -> None:
    obs = Observation(
        "e1",
        Status.COMPLETED,
        {"y": 0.5},
        cost=12.0,
        started_at=100.0,
        finished_at=112.0,
        metadata={"host": "node1", "attempt": 2},
    )
    data = json.loads(json.dumps(obs.to_dict()))
    assert data["status"] == "completed"
    assert Observation.from_dict(data) == obs
    failed = Observation.failed("e2", "boom")
    assert Observation.from_dict(json.loads(json.dumps(failed.to_dict()))) == failed
