"""The value gate: a tight posterior below the best is answered virtually, a wide one runs."""

from __future__ import annotations

import math

import pytest
import torch

from scheduler.gate import Candidate
from scheduler.virtual import (
    DEFAULT_TOLERANCE_FRACTION,
    ValueGate,
    expected_improvement,
    trust,
)
from sciwm.errors import SpecError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate, Prediction
from sciwm.space import Parameter, SearchSpace
from surrogates.gp import GPWorldModel

SPACE = SearchSpace((Parameter("x", "float", 0.0, 1.0),))


def _fitted(xs: list[float]) -> tuple[GPWorldModel, list[float]]:
    """A GP world model fitted on f(x) = sin(6x) at ``xs`` (unit cost)."""
    exps = [Experiment.create("v", i, {"x": x}) for i, x in enumerate(xs)]
    ys = [math.sin(6 * x) for x in xs]
    obs = [
        Observation(e.id, Status.COMPLETED, {"f": y}, cost=1.0 + 0.01 * i)
        for i, (e, y) in enumerate(zip(exps, ys, strict=True))
    ]
    model = GPWorldModel(SPACE, ["f"])
    model.fit(exps, obs)
    return model, ys


def _cand(model: GPWorldModel, x: float) -> Candidate:
    (pred,) = model.predict([{"x": x}])
    return Candidate({"x": x}, pred, acquisition_value=0.0)


TRUSTED = trust(
    [
        (
            Prediction({"f": Estimate.gaussian(0.0, 1.0)}, Estimate.gaussian(1.0, 0.1)),
            Observation(f"e{i}", Status.COMPLETED, {"f": 0.1}),
        )
        for i in range(3)
    ],
    "f",
)


def test_tight_posterior_below_the_best_is_answered_wide_one_is_run() -> None:
    # dense data on [0, 0.5], where the best (sin peaks at x = pi/12 = 0.26) is; none above 0.5
    model, ys = _fitted([i / 20 for i in range(11)])
    gate = ValueGate(SPACE, "f", maximize=True)
    tight = _cand(model, 0.475)  # between two measured points, far below the best
    wide = _cand(model, 0.95)  # far from every result: the posterior is wide
    assert tight.prediction.outcomes["f"].std < 0.1 < wide.prediction.outcomes["f"].std
    out = gate.judge(model, [tight, wide], ys, ref_cost=1.0, trusted=TRUSTED)
    assert out[0] is not None and out[1] is None
    answer = out[0]
    # the value is the closed-form EI at the point, and it fell under tolerance x cost / c_ref
    X = SPACE.encode([{"x": 0.475}])
    ei = float(expected_improvement(model, "f", True, X, max(ys))[0])
    assert answer.value == pytest.approx(ei)
    tol = DEFAULT_TOLERANCE_FRACTION * (max(ys) - min(ys))
    assert answer.threshold == pytest.approx(tol * min(1.0, tight.prediction.cost.mean / 1.0))
    assert answer.value < answer.threshold
    assert answer.saved_cost == pytest.approx(tight.prediction.cost.mean)
    assert "answered by the world model" in answer.reason


def test_a_cheap_run_needs_less_value_a_dear_one_no_more_than_a_typical_one() -> None:
    model, ys = _fitted([i / 20 for i in range(11)])
    cand = _cand(model, 0.33)
    assert not cand.prediction.extrapolating
    X = SPACE.encode([{"x": 0.33}])
    ei = float(expected_improvement(model, "f", True, X, max(ys))[0])
    cost = cand.prediction.cost.mean
    gate = ValueGate(SPACE, "f", maximize=True, tolerance=2 * ei)  # the value misses it
    dear = gate.judge(model, [cand], ys, ref_cost=cost / 100, trusted=TRUSTED)
    assert dear[0] is not None and dear[0].threshold == pytest.approx(2 * ei)  # capped at tol
    cheap = gate.judge(model, [cand], ys, ref_cost=cost * 4, trusted=TRUSTED)
    assert cheap[0] is None  # a quarter of the typical cost: the threshold is ei / 2


def test_untrusted_model_design_points_and_extrapolation_always_run() -> None:
    model, ys = _fitted([i / 20 for i in range(11)])
    gate = ValueGate(SPACE, "f", maximize=True)
    tight = _cand(model, 0.475)
    few = trust([], "f")
    assert not few.trusted and gate.judge(model, [tight], ys, 1.0, few) == [None]
    missed = trust(
        [
            (
                Prediction({"f": Estimate.gaussian(0.0, 0.01)}, Estimate.gaussian(1.0, 0.1)),
                Observation(f"e{i}", Status.COMPLETED, {"f": 5.0}),
            )
            for i in range(5)
        ],
        "f",
    )
    assert not missed.trusted and "0%" in missed.reason
    assert gate.judge(model, [tight], ys, 1.0, missed) == [None]
    design = Candidate(tight.parameters, tight.prediction, acquisition_value=None)
    assert gate.judge(model, [design], ys, 1.0, TRUSTED) == [None]
    off = ValueGate(SPACE, "f", maximize=True, enabled=False)
    assert off.judge(model, [tight], ys, 1.0, TRUSTED) == [None]


def test_expected_improvement_in_closed_form() -> None:
    model, ys = _fitted([0.1, 0.4, 0.9])
    X = torch.tensor([[0.6]], dtype=torch.double)
    post = model.posterior(X.unsqueeze(-2), "f")
    m, s = float(post.mean.reshape(-1)[0]), float(post.variance.reshape(-1)[0]) ** 0.5
    best = max(ys)
    z = (m - best) / s
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    want = (m - best) * cdf + s * pdf
    assert float(expected_improvement(model, "f", True, X, best)[0]) == pytest.approx(want)


@pytest.mark.parametrize(
    "kwargs", [{"tolerance": 0.0}, {"tolerance": math.nan}, {"min_results": 0}]
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SpecError):
        ValueGate(SPACE, "f", True, **kwargs)
