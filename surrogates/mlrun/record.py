"""``RunRecord``: one ML training run as the run predictor reads it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunRecord:
    """One run to predict or learn from.

    Attributes:
        learner: Learner name.
        dataset: Data set name.
        meta: The data set's :data:`~sciwm.lcdb.meta.META_FEATURES` (empty: none, the
            numeric block then holds zeros; only allowed when no meta-features are used).
        anchor: Training-set size (or another positive budget).
        hyperparameters: Learner settings rendered into the learner text.
        extra: Further numbers fed directly to the heads (e.g. unit-cube coordinates).
        curve: Observed prefix ``(anchors, scores, times)`` or ``None``.
    """

    learner: str
    dataset: str
    meta: Mapping[str, float] = field(default_factory=dict)
    anchor: float = 1.0
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    extra: tuple[float, ...] = ()
    curve: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None


__all__ = ["RunRecord"]
