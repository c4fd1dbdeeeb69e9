"""OpenML meta-features of a data set, and their encoding as numbers for a run predictor.

:data:`META_FEATURES` are the 8 that any labelled table yields cheaply; a campaign gives them
for a data set outside LCDB, and every data set of a run table has them. :data:`EXTRA_META`
are 10 more that OpenML computes and LCDB's ``datasets.csv`` holds (class entropy, the
naive-Bayes landmarker, dimensionality, auto-correlation, symbolic features, features after
binarisation, skewness and kurtosis of the numeric attributes, rows with missing values); they
are optional. :func:`extra_vector` turns a data set's meta-features into a fixed-length vector
(:data:`EXTRA_WIDTH` numbers): the extra ones that are given, those that follow from the 8
(dimensionality, symbolic features, an estimate of the features after binarisation), counts and
kurtosis on a signed log scale, anything still unknown replaced by the median of the training
data sets (:func:`extra_fill`) with a 0/1 flag for the columns that OpenML itself leaves empty
for some data sets (:data:`MAY_BE_MISSING`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from sciwm.lcdb import RunDataError

#: OpenML meta-features every data set must have (all computable for any labelled table).
META_FEATURES: tuple[str, ...] = (
    "NumberOfInstances",
    "NumberOfFeatures",
    "NumberOfClasses",
    "MajorityClassPercentage",
    "MinorityClassPercentage",
    "PercentageOfNumericFeatures",
    "PercentageOfBinaryFeatures",
    "PercentageOfMissingValues",
)
#: Meta-features encoded on a log scale.
LOG_META: frozenset[str] = frozenset({"NumberOfInstances", "NumberOfFeatures", "NumberOfClasses"})

#: Optional OpenML meta-features (LCDB has them for its data sets).
EXTRA_META: tuple[str, ...] = (
    "NaiveBayesErrRate",
    "NaiveBayesKappa",
    "ClassEntropy",
    "Dimensionality",
    "AutoCorrelation",
    "NumberOfSymbolicFeatures",
    "NumberOfFeaturesAfterBinarization",
    "MeanSkewnessOfNumericAtts",
    "MeanKurtosisOfNumericAtts",
    "PercentageOfInstancesWithMissingValues",
)
#: Extra columns put on a signed log scale (``sign(v) log(1 + |v|)``).
LOG_EXTRA: frozenset[str] = frozenset(
    {
        "Dimensionality",
        "NumberOfSymbolicFeatures",
        "NumberOfFeaturesAfterBinarization",
        "MeanKurtosisOfNumericAtts",
    }
)
#: Extra columns that OpenML leaves empty for some data sets; each gets a missing flag.
MAY_BE_MISSING: tuple[str, ...] = (
    "NaiveBayesErrRate",
    "NaiveBayesKappa",
    "ClassEntropy",
    "MeanSkewnessOfNumericAtts",
    "MeanKurtosisOfNumericAtts",
)
#: Length of :func:`extra_vector`.
EXTRA_WIDTH = len(EXTRA_META) + len(MAY_BE_MISSING)


def check_meta(name: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """A data set's meta-features as floats: all of :data:`META_FEATURES`, finite, plus any of
    :data:`EXTRA_META` that are given (NaN: unknown).

    Raises:
        RunDataError: Naming the data set and the meta-features that are missing, unknown or
            not finite.
    """
    missing = [k for k in META_FEATURES if k not in meta]
    if missing:
        raise RunDataError(
            f"data set {name!r} lacks meta-feature(s) {missing}; compute them with "
            "sciwm.lcdb.meta.meta_features(X, y)"
        )
    unknown = sorted(set(meta) - set(META_FEATURES) - set(EXTRA_META))
    if unknown:
        raise RunDataError(
            f"data set {name!r}: unknown meta-feature(s) {unknown}; known: "
            f"{[*META_FEATURES, *EXTRA_META]}"
        )
    try:
        values = {k: float(v) for k, v in meta.items()}
    except (TypeError, ValueError):
        raise RunDataError(f"data set {name!r}: every meta-feature must be a number") from None
    bad = [k for k in META_FEATURES if not math.isfinite(values[k])]
    if bad:
        raise RunDataError(f"data set {name!r}: meta-feature(s) {bad} are not finite")
    return values


def meta_features(X: Any, y: Any) -> dict[str, float]:
    """:data:`META_FEATURES` and the :data:`EXTRA_META` that need no model, as OpenML defines
    them, for a table of numeric features.

    The naive-Bayes landmarker (error rate and Cohen's kappa of a Gaussian naive Bayes,
    10-fold cross-validated; OpenML uses Weka's) needs scikit-learn; without it, or with
    missing values in ``X``, it is left out and a predictor treats it as unknown.

    Args:
        X: A ``n x d`` array of features (NaN marks a missing value).
        y: ``n`` class labels, in the table's row order.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise RunDataError("meta_features needs an n x d array X and n labels y")
    n, d = X.shape
    _, counts = np.unique(y, return_counts=True)
    binary = sum(len(np.unique(col[np.isfinite(col)])) == 2 for col in X.T)
    missing = ~np.isfinite(X)
    p = counts / n
    skew, kurt = [], []
    for col in X.T:
        v = col[np.isfinite(col)]
        m2 = float(np.mean((v - v.mean()) ** 2)) if len(v) else 0.0
        if m2 > 0:
            skew.append(float(np.mean((v - v.mean()) ** 3)) / m2**1.5)
            kurt.append(float(np.mean((v - v.mean()) ** 4)) / m2**2 - 3.0)
    out = {
        "NumberOfInstances": float(n),
        "NumberOfFeatures": float(d + 1),  # OpenML counts the target
        "NumberOfClasses": float(len(counts)),
        "MajorityClassPercentage": 100.0 * counts.max() / n,
        "MinorityClassPercentage": 100.0 * counts.min() / n,
        "PercentageOfNumericFeatures": 100.0 * d / (d + 1),
        "PercentageOfBinaryFeatures": 100.0 * binary / (d + 1),
        "PercentageOfMissingValues": 100.0 * missing.sum() / max(1, missing.size),
        "ClassEntropy": float(-(p * np.log2(p)).sum()),
        "Dimensionality": (d + 1) / n,
        "AutoCorrelation": float(np.mean(y[1:] == y[:-1])) if n > 1 else 1.0,
        "NumberOfSymbolicFeatures": 1.0,  # the target
        "NumberOfFeaturesAfterBinarization": float(d),
        "MeanSkewnessOfNumericAtts": float(np.mean(skew)) if skew else math.nan,
        "MeanKurtosisOfNumericAtts": float(np.mean(kurt)) if kurt else math.nan,
        "PercentageOfInstancesWithMissingValues": 100.0 * missing.any(1).mean(),
    }
    if not missing.any() and counts.min() >= 2:
        out.update(_naive_bayes_landmarker(X, y))
    return out


def _naive_bayes_landmarker(X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Error rate and kappa of 10-fold cross-validated Gaussian naive Bayes (empty without
    scikit-learn)."""
    try:
        from sklearn.metrics import cohen_kappa_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.naive_bayes import GaussianNB
    except ImportError:  # pragma: no cover - scikit-learn is optional here
        return {}
    folds = StratifiedKFold(n_splits=min(10, int(np.unique(y, return_counts=True)[1].min())))
    pred = cross_val_predict(GaussianNB(), X, y, cv=folds)
    return {
        "NaiveBayesErrRate": float(np.mean(pred != y)),
        "NaiveBayesKappa": float(cohen_kappa_score(y, pred)),
    }


def _raw_extra(meta: Mapping[str, float]) -> dict[str, float]:
    """The :data:`EXTRA_META` of ``meta``, with those that follow from the 8 filled in."""
    out = {k: float(meta.get(k, math.nan)) for k in EXTRA_META}
    n, f = float(meta["NumberOfInstances"]), float(meta["NumberOfFeatures"])
    symbolic = round(f * (1.0 - float(meta["PercentageOfNumericFeatures"]) / 100.0))
    if math.isnan(out["Dimensionality"]):
        out["Dimensionality"] = f / max(n, 1.0)
    if math.isnan(out["NumberOfSymbolicFeatures"]):
        out["NumberOfSymbolicFeatures"] = float(symbolic)
    if math.isnan(out["NumberOfFeaturesAfterBinarization"]):
        # numeric features stay, each symbolic one (but the target) gives at least 2 columns
        out["NumberOfFeaturesAfterBinarization"] = (f - symbolic) + 2.0 * max(symbolic - 1, 0)
    if math.isnan(out["PercentageOfInstancesWithMissingValues"]):
        if float(meta["PercentageOfMissingValues"]) == 0.0:
            out["PercentageOfInstancesWithMissingValues"] = 0.0
    for k in LOG_EXTRA:
        out[k] = (
            math.copysign(math.log1p(abs(out[k])), out[k]) if math.isfinite(out[k]) else math.nan
        )
    return out


def extra_fill(metas: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per :data:`EXTRA_META` column, the median of the encoded values over some data sets
    (the training data sets of a predictor): what :func:`extra_vector` puts where a value is
    unknown (0 for a column that no data set has)."""
    rows = [_raw_extra(m) for m in metas]
    out = {}
    for k in EXTRA_META:
        vals = [r[k] for r in rows if math.isfinite(r[k])]
        out[k] = float(np.median(vals)) if vals else 0.0
    return out


def extra_vector(meta: Mapping[str, float], fill: Mapping[str, float]) -> tuple[float, ...]:
    """A data set's extra meta-features as :data:`EXTRA_WIDTH` numbers.

    Args:
        meta: Its meta-features (all of :data:`META_FEATURES`, any of :data:`EXTRA_META`).
        fill: :func:`extra_fill` of the predictor's training data sets.

    Returns:
        The encoded :data:`EXTRA_META` (unknown ones from ``fill``), then one 0/1 flag per
        :data:`MAY_BE_MISSING` column (1: unknown).
    """
    raw = _raw_extra(meta)
    values = tuple(raw[k] if math.isfinite(raw[k]) else float(fill[k]) for k in EXTRA_META)
    flags = tuple(0.0 if math.isfinite(raw[k]) else 1.0 for k in MAY_BE_MISSING)
    return values + flags


def meta_vector(meta: Mapping[str, float]) -> list[float]:
    """The 8 :data:`META_FEATURES` as numbers: log for counts, fractions for percentages."""
    out = []
    for k in META_FEATURES:
        v = float(meta[k])
        out.append(math.log(max(v, 1.0)) if k in LOG_META else v / 100.0)
    return out


__all__ = [
    "EXTRA_META",
    "EXTRA_WIDTH",
    "LOG_META",
    "META_FEATURES",
    "MAY_BE_MISSING",
    "check_meta",
    "extra_fill",
    "extra_vector",
    "meta_features",
    "meta_vector",
]
