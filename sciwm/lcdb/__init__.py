"""LCDB, the Learning-Curve Database, and run tables in its shape: the domain knowledge that the
replay and mltrain connectors, the ML-run world model and ``sciwm bench mlrun`` share.

- :mod:`sciwm.lcdb.learners`: LCDB's 20 learners (names, scikit-learn classes, plain-language
  notes); pure Python, no heavy imports.
- :mod:`sciwm.lcdb.meta`: OpenML meta-features of a data set (the 8 a campaign gives, the 10
  more that LCDB's table holds) and their encoding as numbers.
- :mod:`sciwm.lcdb.runs`: the run table (one row per data set, learner and training size) and
  the data-set table, checked; users' own run logs.
- :mod:`sciwm.lcdb.cache`: LCDB read from the ``lcdb`` package's CSV files and cached once as
  parquet; committed slices of it.

pandas is imported by :mod:`~sciwm.lcdb.runs` and :mod:`~sciwm.lcdb.cache` only, so importing
this package or the learner vocabulary stays cheap.
"""

from __future__ import annotations

from sciwm.errors import SciwmError


class RunDataError(SciwmError):
    """A run table, a data-set table or the LCDB files are missing, malformed or inconsistent."""


__all__ = ["RunDataError"]
