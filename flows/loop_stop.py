"""Why the campaign loop ends: stopping rules, the budget, and a round that dispatched nothing.

:func:`check_stop` asks the stopping rules (experiment cap, patience, target, gain per cost),
the fault handler and the budget whether another experiment may start. :func:`end_round`
decides what a round that dispatched nothing means: with experiments still running the loop
waits for them; otherwise the campaign ends, with the reason recorded by
:func:`record_stop_reason`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scheduler.gate import Decision

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


def end_round(loop: CampaignLoop, decisions: list[Decision]) -> bool:
    """After a round's decisions: whether the loop goes on (``False``: the campaign ends).

    A round that dispatched something, or answered a proposal virtually (the agent is asked
    again), goes on; so does one with experiments still running (their results may change
    the next proposal). Otherwise the campaign ends, with the reason in ``loop.state``.
    """
    state = loop.state
    if any(d.dispatch for d in decisions):
        state.virtual_streak = 0
        return True
    if state.virtual_round or state.running:
        return True
    left = loop.gate.remaining(loop.spent, [])
    unit = loop.spec.budget.unit
    state.stop_reason = (
        f"the {left:.3g} {unit} of budget left cannot cover another experiment"
        if decisions
        else "the agent proposed nothing"
    )
    for d in decisions:
        log.info("last candidate held back: %s", d.reason)
    return False


def record_stop_reason(loop: CampaignLoop) -> None:
    """Write why the campaign stopped to the store (``sciwm campaign status`` shows it)."""
    reason = loop.state.stop_reason or "finished"
    log.info("campaign %s stopped: %s", loop.spec.name, reason)
    try:
        loop.store.log_stop_reason(loop.spec.name, reason)
    except Exception as exc:  # noqa: BLE001 - the results are recorded; only the note is lost
        log.warning("could not record the stop reason (%s)", exc)
