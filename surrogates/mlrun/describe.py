"""Runs rendered as text: the input of the language-model encoder.

One function, :func:`describe_run`, serves LCDB rows, the real runs of ``sciwm demo`` and a
user's runs. A description has two segments that the encoder embeds separately (so that
``learners + data sets`` texts, not ``learners x data sets``, are ever embedded):

- the *learner* segment: what is trained and with which settings;
- the *data* segment: the data set's name and its meta-features in words and numbers.

The training budget (training-set size, epochs) is stated in :func:`describe_run`'s full text
for people, but enters the predictor as a number, not through the embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sciwm.errors import WorldModelError
from sciwm.lcdb.learners import lcdb_learner, short_learner
from sciwm.lcdb.meta import META_FEATURES

_META_WORDS: dict[str, str] = {
    "NumberOfInstances": "instances",
    "NumberOfFeatures": "features",
    "NumberOfClasses": "classes",
    "MajorityClassPercentage": "% in the majority class",
    "MinorityClassPercentage": "% in the minority class",
    "PercentageOfNumericFeatures": "% numeric features",
    "PercentageOfBinaryFeatures": "% binary features",
    "PercentageOfMissingValues": "% missing values",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.3g}"
    return str(value)


def describe_learner(learner: str, hyperparameters: Mapping[str, Any] | None = None) -> str:
    """The learner segment.

    Args:
        learner: Learner name (LCDB's, a dotted scikit-learn path or any model name).
        hyperparameters: Settings that differ from the defaults (may be empty).
    """
    if not str(learner).strip():
        raise WorldModelError("a run description needs a learner name")
    short = short_learner(learner)
    text = f"Learner: {short}"
    known = lcdb_learner(short)
    if known is not None:
        text += f" ({known.note})"
    if hyperparameters:
        settings = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(hyperparameters.items()))
        text += f"; settings: {settings}"
    else:
        text += "; default settings"
    return text + "."


def describe_dataset(name: str, meta: Mapping[str, float] | None = None) -> str:
    """The data segment: data set name and its meta-features.

    Raises:
        WorldModelError: If ``meta`` is given but lacks one of :data:`META_FEATURES`.
    """
    text = f"Data set: {name}"
    if meta is not None:
        missing = [k for k in META_FEATURES if k not in meta]
        if missing:
            raise WorldModelError(f"data set {name!r} lacks meta-feature(s) {missing}")
        parts = [f"{_fmt(round(float(meta[k]), 1))} {_META_WORDS[k]}" for k in META_FEATURES]
        text += "; " + ", ".join(parts)
    return text + "."


def describe_run(
    learner: str,
    dataset: str,
    meta: Mapping[str, float] | None = None,
    train_size: float | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    epochs: float | None = None,
) -> str:
    """The full description of one run (for people and for whole-text encoders).

    Args:
        learner: Learner name.
        dataset: Data set name.
        meta: Its meta-features (:data:`META_FEATURES`), if known.
        train_size: Training-set size (LCDB's anchor).
        hyperparameters: Learner settings.
        epochs: Training epochs, for iterative learners.

    Returns:
        One paragraph: learner segment, data segment, budget.
    """
    parts = [describe_learner(learner, hyperparameters), describe_dataset(dataset, meta)]
    budget = []
    if train_size is not None:
        budget.append(f"trained on {_fmt(float(train_size))} examples")
    if epochs is not None:
        budget.append(f"for {_fmt(float(epochs))} epochs")
    if budget:
        parts.append("Budget: " + " ".join(budget) + ".")
    return " ".join(parts)


def segments(
    learner: str,
    dataset: str,
    meta: Mapping[str, float] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """The two segments the encoder embeds: ``(learner text, data text)``."""
    return describe_learner(learner, hyperparameters), describe_dataset(dataset, meta)
