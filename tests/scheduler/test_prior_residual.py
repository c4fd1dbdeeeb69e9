"""World model as prior, real results as truth: a biased world model is overruled in 3 results.

The ML-run world model pretrained on LCDB is the prior; its residual GPs
(:class:`surrogates.mlrun.residuals.ResidualGPs`) learn the campaign's correction. Here the
prior's favourite learner is made, deliberately, 0.4 worse in the campaign's "real" results
than the prior believes: after three of them the model predicts it near the truth and the
agent, steering from the first proposal without a random design, turns to another learner.
"""

from __future__ import annotations

from pathlib import Path

from scheduler.agent import Agent, default_initial_experiments
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from surrogates.mlrun.model import MLRunWorldModel
from tests.surrogates.mlrun.test_model import LCDB_SETTINGS, LEARNERS, cache  # noqa: F401

SPACE = SearchSpace(
    (
        Parameter("learner", "categorical", choices=LEARNERS[:-1]),
        Parameter("train_size", "int", 64, 1437, log=True, fidelity=True),
    )
)
BIAS = 0.4


def test_a_biased_world_model_is_overruled_within_three_results(cache: Path) -> None:  # noqa: F811
    prior = MLRunWorldModel(SPACE, ["accuracy"], **LCDB_SETTINGS)
    prior.fit([], [])
    assert default_initial_experiments(prior) == 0  # an informative prior: no random design
    agent = Agent(SPACE, "accuracy", True, acquisition="ei", initial_experiments=0)
    first = agent.propose(prior, [], [], [], 1)[0]
    favourite = first.parameters["learner"]
    assert first.parameters["train_size"] == 1437  # steered, at the target fidelity
    # the campaign's truth: the favourite is BIAS worse than the prior thinks, everywhere
    sizes = [256, 512, 1024]
    preds = prior.predict([{"learner": favourite, "train_size": n} for n in sizes])
    truth = [p.outcomes["accuracy"].mean - BIAS for p in preds]
    exps = [
        Experiment.create("bias", i, {"learner": favourite, "train_size": n})
        for i, n in enumerate(sizes)
    ]
    obs = [
        Observation(e.id, Status.COMPLETED, {"accuracy": y}, cost=0.1 * (i + 1))
        for i, (e, y) in enumerate(zip(exps, truth, strict=True))
    ]
    model = MLRunWorldModel(SPACE, ["accuracy"], **LCDB_SETTINGS)
    model.fit(exps, obs)
    target = {"learner": favourite, "train_size": 1437}
    (before,) = prior.predict([target])
    (after,) = model.predict([target])
    wrong = before.outcomes["accuracy"].mean - BIAS  # where the truth lies at the target
    assert abs(after.outcomes["accuracy"].mean - wrong) < 0.5 * BIAS
    assert abs(after.outcomes["accuracy"].mean - wrong) < abs(
        before.outcomes["accuracy"].mean - wrong
    )
    nxt = agent.propose(model, exps, obs, [], 1)[0]
    assert nxt.parameters["learner"] != favourite
