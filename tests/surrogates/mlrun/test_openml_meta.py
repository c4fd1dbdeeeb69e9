"""Extra OpenML meta-features: transformation, missing values and LCDB's own table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sciwm.errors import WorldModelError
from surrogates.mlrun.openml_meta import (
    EXTRA_META,
    MAY_BE_MISSING,
    extra_meta_table,
    extra_meta_vectors,
)


def table() -> pd.DataFrame:
    frame = pd.DataFrame({c: [1.0, 3.0, 5.0] for c in EXTRA_META}, index=[11, 12, 13])
    frame.loc[12, "NaiveBayesErrRate"] = np.nan
    frame.loc[13, "MeanKurtosisOfNumericAtts"] = -4.0
    return frame


def test_log_scale_median_fill_and_flags() -> None:
    out = extra_meta_table(table())
    assert out.shape == (3, len(EXTRA_META) + len(MAY_BE_MISSING))
    assert out.loc[12, "NaiveBayesErrRate"] == 3.0  # median of 1 and 5
    assert out.loc[12, "NaiveBayesErrRate_missing"] == 1.0
    assert out.loc[11, "NaiveBayesErrRate_missing"] == 0.0
    assert math.isclose(out.loc[13, "MeanKurtosisOfNumericAtts"], -math.log1p(4.0))
    assert math.isclose(out.loc[12, "Dimensionality"], math.log1p(3.0))
    assert out.loc[11, "AutoCorrelation"] == 1.0  # not logged


def test_vectors_by_name_and_unknown_ids() -> None:
    vec = extra_meta_vectors({"x": 11, "y": 13}, table())
    assert len(vec["x"]) == len(EXTRA_META) + len(MAY_BE_MISSING)
    with pytest.raises(WorldModelError, match="no OpenML meta-features"):
        extra_meta_vectors({"z": 99}, table())
    with pytest.raises(WorldModelError, match="lacks column"):
        extra_meta_table(table().drop(columns=["ClassEntropy"]))


def test_lcdb_table_is_complete_after_filling() -> None:
    out = extra_meta_table()
    assert len(out) > 100 and np.isfinite(out.to_numpy()).all()
