"""Campaign parameters as ML runs: which learner, data set and training size a point is.

:class:`RunMapping` turns campaign parameters (or unit-cube points) into
:class:`~surrogates.mlrun.predictor.RunRecord` runs and into standardised predictor inputs
that are differentiable in the unit-cube point; :func:`dataset_metas` resolves the
meta-features of the campaign's data sets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.lcdb import RunDataError
from sciwm.lcdb.meta import check_meta, extra_vector, meta_vector
from sciwm.lcdb.runs import RunData
from sciwm.space import SearchSpace
from surrogates.mlrun.heads import Inputs
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.record import RunRecord
from surrogates.mlrun.settings import MLRunSettings


def dataset_metas(
    cfg: MLRunSettings, space: SearchSpace, data: RunData | None
) -> dict[str, dict[str, float]]:
    """Meta-features of every data set a campaign can ask about.

    Args:
        cfg: The world model's settings (``dataset_param``/``dataset``, ``dataset_meta``).
        space: The campaign's search space.
        data: The pretraining data, for data sets not in ``dataset_meta`` (``None``: they
            are all there).

    Raises:
        WorldModelError: For a data set neither in ``data`` nor in ``dataset_meta``.
    """
    names = (
        [str(c) for c in space[cfg.dataset_param].choices]
        if cfg.dataset_param
        else [str(cfg.dataset)]
    )
    out = {str(n): check_meta(str(n), m) for n, m in (cfg.dataset_meta or {}).items()}
    for n in names:
        if n in out:
            continue
        try:
            if data is None:
                raise RunDataError(n)
            out[n] = data.meta(n)
        except RunDataError:
            raise WorldModelError(
                f"data set {n!r} is neither in LCDB nor in world_model.settings.dataset_meta; "
                "give its meta-features (sciwm.lcdb.meta.meta_features computes them from X, y)"
            ) from None
    return out


def missing_metas(cfg: MLRunSettings, space: SearchSpace) -> bool:
    """Whether some campaign data set lacks ``dataset_meta`` (so LCDB must be read)."""
    given = set(cfg.dataset_meta or {})
    if cfg.dataset_param:
        return any(str(c) not in given for c in space[cfg.dataset_param].choices)
    return str(cfg.dataset) not in given


class RunMapping:
    """Campaign parameters -> runs -> predictor inputs.

    Args:
        space: The campaign's search space.
        cfg: The world model's settings (which parameters hold learner, size, data set).
        metas: Meta-features per data set (:func:`dataset_metas`; empty without LCDB).
        extra_fill: The prior's :func:`~sciwm.lcdb.meta.extra_fill` (LCDB mode): the data
            sets' extra meta-features then enter as numbers; ``None``: the numeric
            non-role parameters do (as unit-cube coordinates).
    """

    def __init__(
        self,
        space: SearchSpace,
        cfg: MLRunSettings,
        metas: Mapping[str, Mapping[str, float]],
        extra_fill: Mapping[str, float] | None = None,
    ) -> None:
        self.space = space
        self.cfg = cfg
        self.metas = {k: dict(v) for k, v in metas.items()}
        self.extra_fill = None if extra_fill is None else dict(extra_fill)
        self.extras = (
            {}
            if extra_fill is None
            else {n: extra_vector(m, extra_fill) for n, m in self.metas.items()}
        )
        roles = {cfg.learner_param, cfg.anchor_param, cfg.dataset_param} - {None}
        self.text_params = [
            p.name for p in space.parameters if p.kind == "categorical" and p.name not in roles
        ]
        self.numeric_params = [
            p.name for p in space.parameters if p.kind != "categorical" and p.name not in roles
        ]

    def with_extra_fill(self, extra_fill: Mapping[str, float]) -> RunMapping:
        """The same mapping, encoding the data sets' extra meta-features with ``extra_fill``."""
        return RunMapping(self.space, self.cfg, self.metas, extra_fill)

    def record(self, params: Mapping[str, Any], unit: Sequence[float] = ()) -> RunRecord:
        """The run that a parameter assignment stands for.

        Args:
            params: A full parameter assignment.
            unit: Unit-cube coordinates of the numeric non-role parameters (without
                ``extra_fill``).
        """
        cfg = self.cfg
        learner = str(params[cfg.learner_param]) if cfg.learner_param else cfg.learner
        dataset = str(params[cfg.dataset_param]) if cfg.dataset_param else cfg.dataset
        anchor = float(params[cfg.anchor_param]) if cfg.anchor_param else cfg.anchor
        extra = tuple(unit) if self.extra_fill is None else self.extras[str(dataset)]
        return RunRecord(
            learner=str(learner or "training run"),
            dataset=str(dataset or "campaign data"),
            meta=self.metas.get(str(dataset), {}),
            anchor=float(anchor or 1.0),
            hyperparameters={k: params[k] for k in self.text_params},
            extra=extra,
        )

    def unit_extras(self, X: Tensor) -> Tensor:
        """``n x k`` unit-cube coordinates of the numeric non-role parameters (none with
        ``extra_fill``)."""
        if self.extra_fill is not None or not self.numeric_params:
            return X[..., :0]
        idx = [self.space.names.index(n) for n in self.numeric_params]
        return X[..., idx]

    def log2_anchor(self, X: Tensor) -> Tensor:
        """``n`` log2 training sizes of ``n x d`` unit-cube points (differentiable)."""
        name = self.cfg.anchor_param
        if name is None:
            return torch.full(X.shape[:-1], math.log2(float(self.cfg.anchor or 1.0)))
        p = self.space[name]
        u = X[..., self.space.names.index(name)].clamp(0, 1)
        assert p.low is not None and p.high is not None
        if p.log:
            return (math.log(p.low) + u * (math.log(p.high) - math.log(p.low))) / math.log(2)
        return torch.log2(p.low + u * (p.high - p.low))

    def inputs(
        self, predictor: RunPredictor, X: Tensor, records: Sequence[RunRecord] | None = None
    ) -> Inputs:
        """Standardised inputs of ``predictor`` for ``n x d`` unit-cube points, differentiable
        in ``X`` through the training size and the numeric non-role parameters (``records``:
        the runs of ``X`` decoded, if the caller has them)."""
        return predictor.standardise(self.raw_inputs(predictor, X, records))

    def runs(self, X: Tensor) -> list[RunRecord]:
        """The runs that ``n x d`` unit-cube points stand for (decoded, clamped to the cube)."""
        return [self.record(p) for p in self.space.decode(X.detach().clamp(0, 1))]

    def raw_inputs(
        self, predictor: RunPredictor, X: Tensor, records: Sequence[RunRecord] | None = None
    ) -> Inputs:
        """:meth:`inputs` before standardisation."""
        unit = self.unit_extras(X)
        records = self.runs(X) if records is None else records
        columns = [self.log2_anchor(X).unsqueeze(-1)]
        # a data set's runs share its meta-features and extras: one row per data set
        slot: dict[str, int] = {}
        first: list[RunRecord] = []
        for r in records:
            if r.dataset not in slot:
                slot[r.dataset] = len(first)
                first.append(r)
        index = torch.tensor([slot[r.dataset] for r in records], dtype=torch.long)
        if predictor.use_meta:
            columns.append(torch.tensor([meta_vector(r.meta) for r in first])[index])
        if self.extra_fill is not None:
            extras = torch.tensor([r.extra for r in first])
            columns.append(extras.reshape(len(first), -1)[index])
        columns.append(unit)
        if predictor.neighbours:
            columns.append(predictor.neighbour_features(records))
        numeric = torch.cat([c.to(torch.float32) for c in columns], -1)
        return Inputs(predictor.text_features(records), numeric, predictor.curve_features(records))


__all__ = ["RunMapping", "dataset_metas", "missing_metas"]
