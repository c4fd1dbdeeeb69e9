"""When the campaign loop refits its world model: on every result, or lazily for a slow one.

A world model whose last fit took longer than :data:`LAZY_FIT_S` is refitted once the results
that arrived since reach :data:`REFIT_FRACTION` of those it was fitted on (every 10th result
at 100), and at the end. The results not yet in it count as pending experiments (the
acquisition fantasises them, see :meth:`flows.loop.CampaignLoop.propose`), so the loop's own
time per experiment stays small against the lab's. A faster fit is refitted on every result.

A fitted world model is logged to the record store (``world_model/<fit>``, what a resumed
campaign and the prediction service load) on its first fit, once it has been fitted on
:data:`REFIT_FRACTION` more results than the last logged one, and when the campaign ends
(:func:`log_latest`): a model that is refitted on every result is not copied to the store
every time (a pretrained ML-run model is ~6 MB, ~0.13 s a copy).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sciwm.errors import WorldModelError

if TYPE_CHECKING:
    from flows.loop import CampaignLoop

log = logging.getLogger("sciwm.campaign")

#: Seconds of the last fit past which the world model is refitted lazily.
LAZY_FIT_S = 1.0
#: Share of the results a lazily refitted model was fitted on that makes it due again.
REFIT_FRACTION = 0.1


def refit_every(loop: CampaignLoop) -> int:
    """Results between refits: 1, or a tenth of the results for a slow world model."""
    if loop.state.fit_s <= LAZY_FIT_S:
        return 1
    return max(1, int(REFIT_FRACTION * loop.state.fitted_on))


def refit_due(loop: CampaignLoop) -> bool:
    """Whether enough results arrived since the last fit (:data:`REFIT_FRACTION`)."""
    state = loop.state
    if not state.refit_needed or not loop.model_can_fit():
        return False
    new = len(state.finished) - state.fitted_on
    return not loop.model.is_fitted or state.stop_reason is not None or new >= refit_every(loop)


def fit_now(loop: CampaignLoop) -> bool:
    """Refit the world model on every finished experiment and log it; ``False`` if it failed."""
    experiments, observations = loop.history()
    t0 = time.perf_counter()
    try:
        loop.model.fit(experiments, observations)
    except WorldModelError as exc:
        log.warning("world model not refitted: %s", exc)
        return False
    state = loop.state
    state.refit_needed = False
    state.fitted_on = len(state.finished)
    state.fit_s = time.perf_counter() - t0
    state.fits += 1
    logged = state.logged_on
    if logged is None or state.fitted_on - logged >= max(1, REFIT_FRACTION * logged):
        log_latest(loop)
    return True


def log_latest(loop: CampaignLoop) -> None:
    """Log the world model's latest fit to the record store, unless it is logged already."""
    state = loop.state
    if state.fits and state.logged_fit != state.fits and loop.model.is_fitted:
        loop.store.log_world_model(loop.spec.name, loop.model, state.fits)
        state.logged_fit, state.logged_on = state.fits, state.fitted_on
