"""The value gate: which proposals are worth a real run, and which the world model answers.

A proposal is worth running for real when what a real result may teach exceeds what it
costs. Its value is the expected improvement ``EI(x)`` of the world model's posterior of the
objective at the *target* fidelity over the best real result so far, in the objective's
units; its price is its predicted mean cost ``c(x)`` against the typical cost ``c_ref`` of
the campaign's real runs (the median measured cost). The gate answers a proposal
virtually (records the world model's prediction, runs nothing) when

    EI(x) < tolerance * min(1, c(x) / c_ref),

i.e. when a typical-cost run (``c = c_ref``) is expected to improve the best by less than
``tolerance``, the smallest improvement that matters (``[scheduler] virtual_tolerance``;
default :data:`DEFAULT_TOLERANCE_FRACTION` of the range of the real results). A cheap run
needs little expected value to go ahead; a dear one needs no more than a typical one, so that
cost awareness never keeps the campaign from a dear optimum. Only a confident posterior has a
small ``EI`` below the incumbent, so this is "the world model already answers it".

The world model is trusted only as far as the campaign's own real results support it: no
proposal is answered virtually before :data:`DEFAULT_MIN_RESULTS` real results have been
predicted before they ran, nor while fewer of those fell inside their predicted interval
than the interval's level minus :data:`COVERAGE_SLACK`, nor where the model says it
extrapolates, nor for a point of a design (initial, restart or random) that the model did not
choose. A virtual answer is never a measurement: it is not a result, a best value or
training data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from scheduler.fidelity import project_to_target
from scheduler.gate import Candidate
from sciwm.errors import SpecError, WorldModelError
from sciwm.experiment import Observation, Status
from sciwm.prediction import Prediction
from sciwm.space import SearchSpace, Value
from sciwm.world_model import WorldModel

#: Default smallest improvement that matters, as a fraction of the real results' range.
DEFAULT_TOLERANCE_FRACTION = 0.01
#: Real results predicted before they ran that the gate needs before it answers virtually.
DEFAULT_MIN_RESULTS = 3
#: How far below its level the interval coverage on real results may fall and still be trusted.
COVERAGE_SLACK = 0.2
#: Consecutive proposals answered virtually, with nothing running, that end a campaign.
DEFAULT_STOP_AFTER = 10


@dataclass(frozen=True)
class VirtualAnswer:
    """A proposal the world model answered instead of a real run.

    Attributes:
        parameters: The proposal.
        prediction: The world model's answer (outcomes and the cost it would have had).
        value: Expected improvement at the target fidelity (objective units).
        threshold: The value it needed to be run for real.
        saved_cost: Predicted mean cost not spent.
        reason: Human-readable explanation.
    """

    parameters: dict[str, Value]
    prediction: Prediction
    value: float
    threshold: float
    saved_cost: float
    reason: str


@dataclass(frozen=True)
class Trust:
    """How far the campaign's real results support the world model."""

    trusted: bool
    n_checked: int
    coverage: float | None
    reason: str


def trust(
    pairs: Sequence[tuple[Prediction | None, Observation]],
    objective: str,
    min_results: int = DEFAULT_MIN_RESULTS,
) -> Trust:
    """Whether the world model's predictions held on the campaign's real results.

    Args:
        pairs: ``(prediction made before dispatch, observation)`` of finished experiments.
        objective: The objective's name.
        min_results: Checked results needed.
    """
    hits, level = [], None
    for pred, obs in pairs:
        if pred is None or obs.status is not Status.COMPLETED or objective not in obs.outcomes:
            continue
        est = pred.outcomes.get(objective)
        if est is None:
            continue
        level = est.level
        hits.append(est.contains(float(obs.outcomes[objective])))
    n = len(hits)
    if n < min_results:
        return Trust(False, n, None, f"{n} of {min_results} real results checked so far")
    coverage = sum(hits) / n
    assert level is not None
    if coverage < level - COVERAGE_SLACK:
        return Trust(
            False,
            n,
            coverage,
            f"only {coverage:.0%} of {n} real results fell inside the predicted "
            f"{level:.0%} intervals",
        )
    return Trust(True, n, coverage, f"{coverage:.0%} of {n} real results inside the intervals")


class ValueGate:
    """Answers proposals virtually when a real run is not worth its predicted cost.

    Args:
        space: The search space (its fidelity columns are set to the target for the value).
        objective: The objective's name.
        maximize: Whether it is maximised.
        tolerance: Smallest improvement that matters, in the objective's units; ``None``:
            :data:`DEFAULT_TOLERANCE_FRACTION` of the range of the real results.
        min_results: Real results checked before the first virtual answer.
        enabled: ``False`` runs every proposal (the gate then only reports).

    Raises:
        SpecError: If a setting is out of range.
    """

    def __init__(
        self,
        space: SearchSpace,
        objective: str,
        maximize: bool,
        *,
        tolerance: float | None = None,
        min_results: int = DEFAULT_MIN_RESULTS,
        enabled: bool = True,
    ) -> None:
        if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
            raise SpecError(f"virtual_tolerance must be a number > 0, got {tolerance!r}")
        if min_results < 1:
            raise SpecError(f"virtual_min_results must be >= 1, got {min_results}")
        self.space = space
        self.objective = objective
        self.maximize = maximize
        self.tolerance = tolerance
        self.min_results = int(min_results)
        self.enabled = bool(enabled)

    def tolerance_for(self, values: Sequence[float]) -> float | None:
        """The tolerance in force given the real results' objective ``values``."""
        if self.tolerance is not None:
            return self.tolerance
        finite = [float(v) for v in values if math.isfinite(float(v))]
        if len(finite) < 2 or max(finite) == min(finite):
            return None
        return DEFAULT_TOLERANCE_FRACTION * (max(finite) - min(finite))

    def judge(
        self,
        model: WorldModel | None,
        candidates: Sequence[Candidate],
        values: Sequence[float],
        ref_cost: float,
        trusted: Trust,
    ) -> list[VirtualAnswer | None]:
        """A virtual answer for each candidate not worth a real run, else ``None``.

        Args:
            model: The fitted world model (``None``: nothing is answered virtually).
            candidates: The proposals, each with its prediction.
            values: Objective values of the real, completed results so far.
            ref_cost: Typical cost of a real run (the median measured cost so far).
            trusted: :func:`trust` of the model on the campaign's real results.
        """
        out: list[VirtualAnswer | None] = [None] * len(candidates)
        tol = self.tolerance_for(values)
        usable = [
            i
            for i, c in enumerate(candidates)
            if c.prediction is not None
            and not c.prediction.extrapolating
            and c.acquisition_value is not None  # steered by the model, not a design point
        ]
        if (
            not self.enabled
            or model is None
            or not model.is_fitted
            or not trusted.trusted
            or tol is None
            or not values
            or not (math.isfinite(ref_cost) and ref_cost > 0)
            or not usable
        ):
            return out
        best = max(values) if self.maximize else min(values)
        X = self.space.encode([candidates[i].parameters for i in usable])
        try:
            ei = expected_improvement(
                model, self.objective, self.maximize, X, best, self.space.fidelity_indices
            )
        except WorldModelError:
            return out
        for k, i in enumerate(usable):
            pred = candidates[i].prediction
            assert pred is not None
            cost = float(pred.cost.mean)
            if not (math.isfinite(cost) and cost > 0) or not math.isfinite(float(ei[k])):
                continue
            threshold = tol * min(1.0, cost / ref_cost)
            value = float(ei[k])
            if value >= threshold:
                continue
            out[i] = VirtualAnswer(
                parameters=dict(candidates[i].parameters),
                prediction=pred,
                value=value,
                threshold=threshold,
                saved_cost=cost,
                reason=(
                    f"answered by the world model: expected improvement {value:.3g} < "
                    f"{threshold:.3g} (tolerance {tol:.3g} x predicted cost {cost:.3g} / "
                    f"typical cost {ref_cost:.3g}); {trusted.reason}"
                ),
            )
        return out


def expected_improvement(
    model: WorldModel,
    objective: str,
    maximize: bool,
    X: torch.Tensor,
    best: float,
    fidelity: Sequence[int] = (),
) -> torch.Tensor:
    """Closed-form expected improvement on ``best`` at the target fidelity.

    Args:
        model: A fitted world model.
        objective: The objective's name.
        maximize: Whether it is maximised.
        X: A ``n x d`` tensor of unit-cube points.
        best: The best real result so far.
        fidelity: Fidelity columns, set to the target before the posterior is read.

    Returns:
        A ``n`` tensor (objective units, >= 0).
    """
    X = project_to_target(X, fidelity)
    with torch.no_grad():
        post = model.posterior(X.unsqueeze(-2), objective)
        mean = post.mean.reshape(-1)
        std = post.variance.reshape(-1).clamp_min(1e-18).sqrt()
    gain = (mean - best) if maximize else (best - mean)
    z = gain / std
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    return (gain * normal.cdf(z) + std * normal.log_prob(z).exp()).clamp_min(0.0)
