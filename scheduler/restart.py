"""Restarts of a stalled search: where the agent's current epoch begins.

A GP loop that has converged on a local optimum keeps refining it: expected improvement is
largest next to the incumbent, and nothing it has seen suggests a better basin elsewhere
(Hartmann6's second-best minimum, -3.20 against -3.32, catches about half of the campaign
bench's seeds, whatever the acquisition). With ``restart_after = k`` the agent ends an epoch
once its best result has not improved by more than ``rel_tol`` of the observed value range
for ``k`` completed experiments, and starts a new one: a fresh part of the Sobol design, then
a world model fitted on the new epoch's results only, so that its expected improvement is
measured against the new epoch's best rather than the old trap's. Every result stays recorded,
and the campaign's best is over all epochs.

The epochs are derived from the experiment history alone, so a resumed campaign finds the
same ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.world_model import WorldModel

logger = logging.getLogger(__name__)

#: An improvement smaller than this fraction of the observed value range does not count.
DEFAULT_REL_TOL = 0.01

#: Default stall length that restarts the search (``restart_after``): on the campaign bench's
#: Hartmann6 tuning seeds 1000-1015 it raised the share of runs reaching the target from 8 to
#: 13 of 16 and left Branin's 100 tuning seeds unchanged (median 28.6 either way).
DEFAULT_RESTART_AFTER = 10


def default_restart_after(model: WorldModel | None) -> int:
    """``restart_after`` when the campaign file does not set one.

    A restart is a fresh Sobol design and a world model of the new epoch's results only: it
    lets a GP that learns from nothing escape a local trap. A world model that predicts
    before any real result knows the whole space already, and a restart would throw away
    what the campaign taught it, so it gets none (0); any other gets
    :data:`DEFAULT_RESTART_AFTER`.
    """
    if model is not None and model.can_fit([], []):
        return 0
    return DEFAULT_RESTART_AFTER


def epoch_start(
    values: Sequence[float | None],
    initial_experiments: int,
    restart_after: int,
    rel_tol: float = DEFAULT_REL_TOL,
) -> int:
    """Index of the first experiment of the current epoch.

    Args:
        values: The objective of every finished experiment in dispatch order, oriented so
            that smaller is better (``None`` for a failed one).
        initial_experiments: Completed experiments an epoch spends on its initial design
            before it may stall.
        restart_after: Completed experiments without a real improvement that end an epoch
            (0: never restart).
        rel_tol: Smallest improvement that counts, as a fraction of the range of the values
            seen so far.

    Returns:
        An index into ``values`` (``len(values)`` when the next experiment opens a new
        epoch; 0 when no epoch has ended).
    """
    if restart_after <= 0:
        return 0
    start, best, since, n_done = 0, math.inf, 0, 0
    lo, hi = math.inf, -math.inf
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            continue
        lo, hi = min(lo, v), max(hi, v)
        n_done += 1
        if v < best - rel_tol * (hi - lo):
            best, since = v, 0
        else:
            since += 1
        if n_done >= initial_experiments + restart_after and since >= restart_after:
            start, best, since, n_done = i + 1, math.inf, 0, 0
    return start


class Restarts:
    """The epochs of :class:`scheduler.agent.Agent` (a mixin).

    It uses the agent's settings ``objective``, ``maximize``, ``initial_experiments`` and
    ``restart_after``, and keeps the current epoch's world model in ``_epoch_copy``
    (``(start, model, ids of the observations it was fitted on)``).
    """

    objective: str
    maximize: bool
    initial_experiments: int
    restart_after: int
    _epoch_copy: tuple[int, WorldModel, tuple[object, ...]] | None

    def _epoch_start(self, observations: Sequence[Observation]) -> int:
        """First experiment of the current epoch (0 without restarts)."""
        if not self.restart_after:
            return 0
        sign = -1.0 if self.maximize else 1.0
        values: list[float | None] = []
        for o in observations:
            v = o.outcomes.get(self.objective) if o.status is Status.COMPLETED else None
            values.append(None if v is None else sign * float(v))
        return epoch_start(values, self.initial_experiments, self.restart_after)

    def _epoch_model(
        self,
        model: WorldModel | None,
        experiments: Sequence[Experiment],
        observations: Sequence[Observation],
        start: int,
    ) -> WorldModel | None:
        """A copy of ``model`` fitted on one epoch's results (``None`` if it cannot be).

        The copy is kept for the epoch (starting at experiment ``start``) and refitted as its
        results grow, so a world model that warm-starts its refits (the ML-run model's
        residual GPs) does so within the epoch.
        """
        if (
            model is None
            or len(experiments) < self.initial_experiments
            or not model.can_fit(experiments, observations)
        ):
            return None
        ids = tuple((o.experiment_id, o.status) for o in observations)
        kept = self._epoch_copy
        if kept is not None and kept[0] == start and type(kept[1]) is type(model):
            if kept[2] == ids:  # nothing new since the last proposal
                return kept[1]
            fresh = kept[1]
        else:
            fresh = model.spawn()
        self._epoch_copy = None
        try:
            fresh.fit(experiments, observations)
        except WorldModelError as exc:
            logger.warning("refitting the world model on the new epoch failed: %s", exc)
            return None
        self._epoch_copy = (start, fresh, ids)
        return fresh
