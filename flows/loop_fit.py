"""When the campaign loop refits its world model: on every result, or lazily for a slow one.

A world model whose last fit took longer than :data:`LAZY_FIT_S` is refitted once the results
that arrived since reach :data:`REFIT_FRACTION` of those it was fitted on (every 10th result
at 100), and at the end. The results not yet in it count as pending experiments (the
acquisition fantasises them, see :meth:`flows.loop.CampaignLoop.propose`), so the loop's own
time per experiment stays small against the lab's. A faster fit is refitted on every result.
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
    loop.store.log_world_model(loop.spec.name, loop.model, state.fits)
    return True
