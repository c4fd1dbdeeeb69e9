"""Why the campaign loop ends: stopping rules, the budget, and a round that dispatched nothing.

:func:`check_stop` asks the stopping rules (experiment cap, patience, target, gain per cost),
the fault handler and the budget whether another experiment may start. :func:`end_round`
decides what a round that dispatched nothing means: with experiments still running the loop
waits for them. With nothing running, a round whose every proposal the dispatch gate held
back for cost does not end the campaign while cheaper experiments exist: the agent is asked
again for candidates the budget left can pay for (:func:`affordable`, the gate's own rule),
and keeps proposing only such ones while nothing runs. Only when none is left (the cheapest
new point the world model predicts is too dear) does the campaign end, with a reason that
names it; :func:`record_stop_reason` writes it to the store. The gate still decides every
dispatch, so the budget invariant (:mod:`scheduler.gate`) holds as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from scheduler.gate import Candidate, Decision

if TYPE_CHECKING:
    from flows.loop import CampaignLoop

log = logging.getLogger("sciwm.campaign")


def check_stop(loop: CampaignLoop) -> str | None:
    """Why no further experiment should start, or ``None``."""
    reason = loop.stopping.check(loop.objective_values(), loop.n_started)
    reason = reason or loop.stopping.check_gain(loop.state.gains)
    reason = reason or loop.faults.stop_reason(loop.space.names)
    if reason:
        return reason
    remaining = loop.gate.remaining(loop.spent, loop.running_reserved())
    if remaining <= 0 and not loop.state.in_flight():  # else wait: reservations return
        budget = loop.spec.budget
        return f"budget spent ({loop.spent:.4g} of {budget.total:.4g} {budget.unit})"
    return None


def affordable(loop: CampaignLoop) -> Callable[[Candidate], bool] | None:
    """While nothing runs: whether the gate can pay for a candidate now (``None`` otherwise)."""
    if loop.state.in_flight():
        return None
    left = loop.gate.remaining(loop.spent, loop.running_reserved())
    return lambda candidate: loop.gate.fits(candidate, left)


def end_round(loop: CampaignLoop, decisions: list[Decision], n: int) -> bool:
    """After a round's decisions: whether the loop goes on (``False``: the campaign ends).

    A round that dispatched something, or answered a proposal virtually (the agent is asked
    again), goes on; so does one with experiments still running (their results may change
    the next proposal). A round whose proposals were all too dear, with nothing running, is
    proposed again (``n`` candidates) restricted to what the budget left pays for. Otherwise
    the campaign ends, with the reason in ``loop.state``.
    """
    state = loop.state
    if any(d.dispatch for d in decisions):
        state.virtual_streak = 0
        return True
    if state.virtual_round or state.running:
        return True
    if decisions and not state.budget_bound:  # held back for cost: ask for affordable ones
        for d in decisions:
            log.info("held back: %s; asking for experiments the budget left covers", d.reason)
        state.budget_bound = True
        decisions = loop.dispatch(n)
        if state.stop_reason is not None:
            return bool(state.running)
        return end_round(loop, decisions, n)
    state.stop_reason = (
        budget_reason(loop)
        if decisions or state.budget_bound
        else "the agent proposed nothing: every experiment it can propose has been run or answered"
    )
    for d in decisions:
        log.info("last candidate held back: %s", d.reason)
    return False


def budget_reason(loop: CampaignLoop) -> str:
    """Why the budget left cannot cover another experiment, naming the cheapest one left."""
    left = loop.gate.remaining(loop.spent, [])
    unit = loop.spec.budget.unit
    text = f"the {left:.3g} {unit} of budget left cannot cover another experiment"
    if not loop.model.is_fitted:
        return text
    experiments, _ = loop.history()
    cheapest = loop.agent.cheapest_new(
        loop.model,
        [*experiments, *loop.state.answered],
        canonical=loop.connector.resolve,
        level=loop.spec.scheduler.interval_level,
    )
    if cheapest is None:
        return f"{text}: every candidate experiment has been run or answered"
    if loop.gate.fits(cheapest, left):  # the agent found none, yet one seems to fit
        return f"{text} that the agent would propose"
    _, least, _ = loop.gate.reservation(cheapest)
    what = ", ".join(f"{k}={v}" for k, v in cheapest.parameters.items())
    return f"{text}: the cheapest one not yet run ({what}) is predicted to cost {least:.3g} {unit}"


def record_stop_reason(loop: CampaignLoop) -> None:
    """Write why the campaign stopped to the store (``sciwm campaign status`` shows it)."""
    reason = loop.state.stop_reason or "finished"
    log.info("campaign %s stopped: %s", loop.spec.name, reason)
    try:
        loop.store.log_stop_reason(loop.spec.name, reason)
    except Exception as exc:  # noqa: BLE001 - the results are recorded; only the note is lost
        log.warning("could not record the stop reason (%s)", exc)
