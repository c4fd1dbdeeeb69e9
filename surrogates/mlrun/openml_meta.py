"""More OpenML meta-features of LCDB's data sets, as extra numbers for the run predictor.

:data:`~surrogates.mlrun.data.META_FEATURES` are the 8 meta-features any labelled table
yields cheaply (and that a campaign must give). LCDB's ``datasets.csv`` holds ~60 more from
OpenML; :data:`EXTRA_META` are ten of them that describe what the 8 miss: class entropy,
the naive-Bayes landmarker (error rate and kappa), dimensionality, auto-correlation, the
number of symbolic features and of features after binarisation, the skewness and kurtosis of
numeric attributes, and the share of rows with missing values. :func:`extra_meta_vectors`
turns them into fixed-length vectors (``RunRecord.extra``): counts and kurtosis on a signed
log scale, a missing value replaced by the median of all LCDB data sets (a fixed public
table, no targets involved) plus a 0/1 flag per column that can be missing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sciwm.errors import WorldModelError
from surrogates.mlrun.data import lcdb_package_dir

#: OpenML meta-features used beyond the 8 of ``META_FEATURES``.
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
#: Columns put on a signed log scale (``sign(v) log(1 + |v|)``).
LOG_EXTRA: frozenset[str] = frozenset(
    {
        "Dimensionality",
        "NumberOfSymbolicFeatures",
        "NumberOfFeaturesAfterBinarization",
        "MeanKurtosisOfNumericAtts",
    }
)
#: Columns that OpenML leaves empty for some data sets; each gets a missing flag.
MAY_BE_MISSING: tuple[str, ...] = (
    "NaiveBayesErrRate",
    "NaiveBayesKappa",
    "ClassEntropy",
    "MeanSkewnessOfNumericAtts",
    "MeanKurtosisOfNumericAtts",
)


def extra_meta_table(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The :data:`EXTRA_META` columns of an OpenML meta-feature table as model inputs.

    Args:
        table: Rows indexed by OpenML id with (at least) the :data:`EXTRA_META` columns
            (default: LCDB's ``datasets.csv``).

    Returns:
        A frame indexed like ``table``: the transformed :data:`EXTRA_META` columns (medians
        in place of missing values) then one ``<name>_missing`` flag per
        :data:`MAY_BE_MISSING` column; ``len(EXTRA_META) + len(MAY_BE_MISSING)`` columns.
    """
    if table is None:
        table = pd.read_csv(lcdb_package_dir() / "datasets.csv").set_index("openmlid")
    absent = [c for c in EXTRA_META if c not in table.columns]
    if absent:
        raise WorldModelError(f"the meta-feature table lacks column(s) {absent}")
    vals = table[list(EXTRA_META)].astype(float)
    for c in LOG_EXTRA:
        vals[c] = np.sign(vals[c]) * np.log1p(vals[c].abs())
    flags = vals[list(MAY_BE_MISSING)].isna().astype(float).add_suffix("_missing")
    return pd.concat([vals.fillna(vals.median()), flags], axis=1)


def extra_meta_vectors(
    openml_ids: Mapping[str, int], table: pd.DataFrame | None = None
) -> dict[str, tuple[float, ...]]:
    """Per data set name, the vector of :func:`extra_meta_table` for its OpenML id.

    Args:
        openml_ids: ``{data set name: OpenML id}``.
        table: As for :func:`extra_meta_table`.

    Raises:
        WorldModelError: For an id the table does not have.
    """
    full = extra_meta_table(table)
    unknown = sorted(n for n, i in openml_ids.items() if i not in full.index)
    if unknown:
        raise WorldModelError(f"no OpenML meta-features for data set(s) {unknown[:5]}")
    return {n: tuple(float(v) for v in full.loc[i]) for n, i in openml_ids.items()}


__all__ = ["EXTRA_META", "extra_meta_table", "extra_meta_vectors"]
