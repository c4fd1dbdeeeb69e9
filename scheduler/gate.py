"""The dispatch gate: which proposals go to the real backend, and how much budget each reserves.

Budget accounting is conservative. An experiment that is still running holds a *reservation*
(the most it may cost; the connector stops it there), so the gate never counts on a running
experiment being cheap. A proposal is dispatched only while

    spent + sum(reservations of running experiments) + sum(new reservations) <= budget_total,

and each new reservation becomes the experiment's ``max_cost``. As long as every finished
experiment costs at most its reservation (the connector enforces the cap), the money actually
spent never exceeds the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sciwm.errors import BudgetError
from sciwm.prediction import Prediction
from sciwm.space import Value

#: Multiplier on the upper end of a predicted cost's interval that a dispatched experiment
#: reserves (and is stopped at): room for a cost model that is somewhat too optimistic.
DEFAULT_SAFETY_FACTOR = 1.5

#: Relative margin kept free of the budget so that floating-point rounding in any order of
#: summation can never push the total over ``budget_total``.
ROUNDING_MARGIN = 1e-9


def initial_reservation(budget_total: float, parallelism: int = 1) -> float:
    """Reservation of an experiment without a cost prediction (the initial design).

    Half the budget shared among the experiments that may run at once, so that the first
    round of experiments, even if each runs to its cap, leaves half the budget for the world
    model to spend.

    Args:
        budget_total: The campaign's total budget, in cost units.
        parallelism: Experiments that may run at once (>= 1).
    """
    return budget_total / (2 * max(1, int(parallelism)))


@dataclass(frozen=True)
class Candidate:
    """A proposed experiment, before the gate has looked at it.

    Attributes:
        parameters: Full parameter assignment (validated, in the space's order).
        prediction: The world model's prediction for it; ``None`` during the initial design,
            when there is no fitted model yet.
        acquisition_value: The acquisition value it was chosen with (log scale for the
            log-EI based acquisitions), if any.
    """

    parameters: dict[str, Value]
    prediction: Prediction | None
    acquisition_value: float | None = None


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one candidate.

    Attributes:
        candidate: The candidate judged.
        dispatch: Whether it may be sent to the backend now.
        max_cost: The budget reserved for it, passed to the connector as the experiment's
            cost cap; ``None`` when it is not dispatched.
        reason: Human-readable explanation of the verdict.
    """

    candidate: Candidate
    dispatch: bool
    max_cost: float | None
    reason: str


class DispatchGate:
    """Dispatches proposals while the budget, counting running experiments pessimistically, allows.

    The reservation of a candidate is ``safety_factor`` times the upper end of its predicted
    cost interval, or ``default_reservation`` when it has no prediction, and is always capped
    by what remains of the budget. A candidate is held back when its (capped) reservation is
    below the least amount worth running it with: its predicted mean cost, or
    ``min_reservation`` when it has no prediction.

    Args:
        budget_total: The campaign's total budget, in cost units (> 0).
        safety_factor: Multiplier (>= 1) on the predicted cost's upper bound (default
            :data:`DEFAULT_SAFETY_FACTOR`).
        default_reservation: Reservation of a candidate without prediction (initial design);
            default :func:`initial_reservation` of the budget and ``parallelism``.
        parallelism: Experiments that may run at once, for the default reservation.
        min_reservation: Least reservation worth dispatching a candidate without
            prediction. Defaults to a hundredth of the budget.
        min_cap: Floor of a predicted candidate's reservation (its cost cap): a cost model that
            is confidently wrong about a cheap experiment does not get it stopped at a tiny
            cap. What remains of the budget still bounds every reservation. Defaults to half
            the default reservation.
        unit: Cost unit shown in reasons (e.g. ``"s"``).

    Raises:
        BudgetError: If an argument is out of range.
    """

    def __init__(
        self,
        budget_total: float,
        *,
        safety_factor: float = DEFAULT_SAFETY_FACTOR,
        default_reservation: float | None = None,
        parallelism: int = 1,
        min_reservation: float | None = None,
        min_cap: float | None = None,
        unit: str = "",
    ) -> None:
        if not (math.isfinite(budget_total) and budget_total > 0):
            raise BudgetError(f"the budget must be a positive number, got {budget_total!r}")
        if not (math.isfinite(safety_factor) and safety_factor >= 1.0):
            raise BudgetError(
                f"the safety factor must be a number >= 1 ({DEFAULT_SAFETY_FACTOR} is the "
                f"default), got {safety_factor!r}"
            )
        if parallelism < 1:
            raise BudgetError(f"parallelism must be at least 1, got {parallelism!r}")
        if default_reservation is None:
            default_reservation = initial_reservation(budget_total, parallelism)
        if not (math.isfinite(default_reservation) and default_reservation > 0):
            raise BudgetError(
                f"the default reservation must be a positive number, got {default_reservation!r}"
            )
        if min_reservation is None:
            min_reservation = budget_total / 100
        if not (math.isfinite(min_reservation) and min_reservation >= 0):
            raise BudgetError(
                f"the minimum reservation must be a number >= 0, got {min_reservation!r}"
            )
        self.budget_total = float(budget_total)
        self.safety_factor = float(safety_factor)
        self.default_reservation = float(default_reservation)
        self.min_reservation = float(min_reservation)
        if min_cap is None:
            min_cap = self.default_reservation / 2
        if not (math.isfinite(min_cap) and min_cap >= 0):
            raise BudgetError(f"the minimum cap must be a number >= 0, got {min_cap!r}")
        self.min_cap = float(min_cap)
        self.unit = unit

    # -- accounting ---------------------------------------------------------------------
    def remaining(self, spent: float, running_reserved: Sequence[float]) -> float:
        """Budget not yet spent nor reserved by running experiments (never negative).

        Args:
            spent: Measured cost of every finished experiment.
            running_reserved: Reservation (``max_cost``) of every experiment still running.

        Raises:
            BudgetError: If an amount is negative or not finite.
        """
        self._check_amounts(spent, running_reserved)
        committed = math.fsum([spent, *running_reserved])
        usable = self.budget_total * (1.0 - ROUNDING_MARGIN)
        return max(0.0, usable - committed)

    def reservation(self, candidate: Candidate) -> tuple[float, float, str]:
        """What a candidate would reserve with an unlimited budget.

        Returns:
            ``(wanted, minimum, how)``: the reservation, the least reservation worth
            dispatching it with, and how the reservation was computed (for reasons).
        """
        pred = candidate.prediction
        if pred is None:
            return (
                self.default_reservation,
                self.min_reservation,
                "default reservation: no prediction yet",
            )
        upper = float(pred.cost.upper)
        mean = float(pred.cost.mean)
        if not (math.isfinite(upper) and upper > 0):
            # A broken cost prediction falls back on the default, never on "free".
            return (
                self.default_reservation,
                max(self.min_reservation, mean if math.isfinite(mean) else 0.0),
                f"default reservation: predicted cost upper bound {upper!r} is unusable",
            )
        wanted = self.safety_factor * upper
        how = f"{pred.cost.level:.0%} upper bound {self._fmt(upper)} x {self.safety_factor:g}"
        if wanted < self.min_cap:
            # A confident but wrong cost model must not get cheap-looking experiments killed
            # at a tiny cap: reserve at least min_cap (the budget left still bounds it).
            wanted = self.min_cap
            how += f", raised to the floor {self._fmt(self.min_cap)}"
        # The least worth running it with is its predicted mean cost (a very wide log-normal
        # can put the mean above the interval's upper end: then the reservation itself).
        minimum = min(max(0.0, mean), wanted) if math.isfinite(mean) else wanted
        return wanted, minimum, how

    def fits(self, candidate: Candidate, left: float) -> bool:
        """Whether :meth:`decide` would dispatch ``candidate`` with ``left`` of the budget free.

        Its reservation, capped by ``left``, must be positive and at least the least worth
        running it with (:meth:`reservation`): the agent asks this to propose only what the
        budget left can pay for, and :meth:`decide` uses the same rule.
        """
        wanted, minimum, _ = self.reservation(candidate)
        reserve = min(wanted, left)
        return reserve > 0 and reserve >= minimum

    def decide(
        self,
        candidates: Sequence[Candidate],
        *,
        spent: float,
        running_reserved: Sequence[float],
        capacity: int,
    ) -> list[Decision]:
        """Decide, in order, which candidates to dispatch now.

        Candidates are taken in the order given (best first); each dispatched one reserves
        budget before the next is judged. At most ``capacity`` are dispatched.

        Args:
            candidates: Proposals, best first.
            spent: Measured cost of every finished experiment.
            running_reserved: Reservations of the experiments still running.
            capacity: How many more experiments the backend accepts now (>= 0).

        Returns:
            One decision per candidate, in the same order.

        Raises:
            BudgetError: If an amount is negative or not finite, or capacity is negative.
        """
        if capacity < 0:
            raise BudgetError(f"capacity must be >= 0, got {capacity!r}")
        left = self.remaining(spent, running_reserved)
        decisions: list[Decision] = []
        dispatched = 0
        for cand in candidates:
            if dispatched >= capacity:
                decisions.append(
                    Decision(cand, False, None, f"no capacity: {capacity} slot(s) already used")
                )
                continue
            wanted, minimum, how = self.reservation(cand)
            reserve = min(wanted, left)
            if not self.fits(cand, left):
                what = (
                    f"predicted mean cost {self._fmt(minimum)}"
                    if cand.prediction is not None
                    else f"minimum reservation {self._fmt(minimum)}"
                )
                decisions.append(
                    Decision(
                        cand,
                        False,
                        None,
                        f"budget left {self._fmt(left)} < {what}; not worth starting",
                    )
                )
                continue
            if reserve < wanted:
                reason = (
                    f"reserved {self._fmt(reserve)}: all the budget left "
                    f"(wanted {self._fmt(wanted)}, {how})"
                )
            else:
                reason = f"reserved {self._fmt(reserve)} ({how})"
            decisions.append(Decision(cand, True, reserve, reason))
            left = max(0.0, left - reserve)
            dispatched += 1
        return decisions

    # -- helpers ------------------------------------------------------------------------
    def _fmt(self, amount: float) -> str:
        text = f"{amount:.4g}"
        return f"{text} {self.unit}" if self.unit else text

    @staticmethod
    def _check_amounts(spent: float, running_reserved: Sequence[float]) -> None:
        for name, value in [("spent", spent)] + [
            (f"running_reserved[{i}]", v) for i, v in enumerate(running_reserved)
        ]:
            if not (math.isfinite(value) and value >= 0):
                raise BudgetError(f"{name} must be a finite amount >= 0, got {value!r}")
