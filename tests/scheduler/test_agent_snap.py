"""Proposals in the backend's form: none repeats an experiment already run after snapping."""

from __future__ import annotations

import math

import pytest

from scheduler.agent import Agent
from scheduler.gate import Candidate
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

#: The sizes the backend has; any other size is run at the largest one at or below it.
ANCHORS = (16, 64, 256, 1024)
SPACE = SearchSpace(
    (
        Parameter("learner", "categorical", choices=("a", "b", "c")),
        Parameter("size", "int", 16, 1024, log=True, fidelity=True),
    )
)
VALUE = {"a": 0.5, "b": 0.7, "c": 0.6}
PRICE = {"a": 1.0, "b": 3.0, "c": 0.3}


def snap(params):
    out = dict(params)
    out["size"] = max(a for a in ANCHORS if a <= int(out["size"]))
    return out


def _result(seq: int, params) -> tuple[Experiment, Observation]:
    e = Experiment.create("snap", seq, params)
    y = VALUE[params["learner"]] + 0.05 * math.log2(params["size"] / 16)
    cost = PRICE[params["learner"]] * params["size"] / 100
    return e, Observation(e.id, Status.COMPLETED, {"y": y}, cost=cost)


def _campaign(acquisition: str, seed: int, n: int, admit=None) -> list[dict]:
    """Propose one at a time, ``n`` times, each result measured (snapped) before the next."""
    agent = Agent(
        SPACE,
        "y",
        True,
        acquisition=acquisition,
        seed=seed,
        num_restarts=2,
        raw_samples=32,
        initial_experiments=3,
    )
    exps, obs, proposed = [], [], []
    for _ in range(n):
        model = None
        if len(exps) >= 2:
            model = GPWorldModel(SPACE, ["y"])
            model.fit(exps, obs)
        cands = agent.propose(model, exps, obs, [], 1, canonical=snap, admit=admit)
        if not cands:
            break
        (cand,) = cands
        assert cand.parameters == snap(cand.parameters)  # proposed in the backend's form
        proposed.append(cand.parameters)
        e, o = _result(len(exps), cand.parameters)
        exps.append(e)
        obs.append(o)
    return proposed


def test_random_search_proposes_every_experiment_once() -> None:
    n_distinct = len(VALUE) * len(ANCHORS)  # 12 experiments exist
    proposed = _campaign("random", seed=1, n=n_distinct + 2)
    keys = [(p["learner"], p["size"]) for p in proposed]
    assert len(keys) == len(set(keys)) == n_distinct  # every one, each once
    # asked again with nothing left to run, the agent proposes nothing rather than a repeat


@pytest.mark.parametrize("acquisition", ["ei_per_cost", "ei"])
def test_no_shorter_run_of_a_learner_measured_at_the_target(acquisition) -> None:
    """Model-based proposals never repeat an experiment, and once a learner is measured at
    the largest size none of its smaller sizes is proposed: it would say nothing the
    campaign needs. When every learner is measured there the agent proposes nothing."""
    proposed = _campaign(acquisition, seed=1, n=len(VALUE) * len(ANCHORS) + 2)
    keys = [(p["learner"], p["size"]) for p in proposed]
    assert len(keys) == len(set(keys))
    done_at: dict[str, int] = {}
    for i, (learner, size) in enumerate(keys):
        assert learner not in done_at, f"{learner} at {size} after its full-size result"
        if size == ANCHORS[-1]:
            done_at[learner] = i
    assert set(done_at) == set(VALUE)  # every learner reached the target, then it stopped
    assert keys[-1][1] == ANCHORS[-1]


def test_pending_and_answered_experiments_are_not_proposed_after_snapping() -> None:
    agent = Agent(SPACE, "y", True, acquisition="random", seed=0, initial_experiments=0)
    taken = [{"learner": c, "size": s} for c in ("a", "b") for s in ANCHORS]
    pending = [{"learner": "c", "size": 100}, {"learner": "c", "size": 1000}]  # 64 and 256
    answered = [{"learner": "c", "size": 20}]  # 16
    cands = agent.propose(None, [], [], taken + pending, 3, answered=answered, canonical=snap)
    assert [c.parameters for c in cands] == [{"learner": "c", "size": 1024}]


def test_admit_restricts_proposals_to_admitted_candidates() -> None:
    def no_b(candidate: Candidate) -> bool:
        return candidate.parameters["learner"] != "b"

    proposed = _campaign("random", seed=2, n=10, admit=no_b)
    assert len(proposed) == 8 and all(p["learner"] != "b" for p in proposed)
    proposed = _campaign("ei_per_cost", seed=2, n=10, admit=no_b)
    assert proposed and all(p["learner"] != "b" for p in proposed)
