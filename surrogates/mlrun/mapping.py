"""Campaign parameters as ML runs: which learner, data set and training size a point is.

:class:`RunMapping` is the part of :class:`~surrogates.mlrun.model.MLRunWorldModel` that
turns campaign parameters (or unit-cube points) into :class:`~surrogates.mlrun.predictor.RunRecord`
runs and standardised predictor inputs, resolves the data sets' meta-features and loads the
LCDB-pretrained predictor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.space import SearchSpace
from surrogates.mlrun.data import RunData, load_slice
from surrogates.mlrun.heads import HeadConfig, Inputs
from surrogates.mlrun.predictor import RunPredictor, RunRecord, meta_vector
from surrogates.mlrun.pretrain import pretrain_lcdb

#: Optimiser steps of LCDB pretraining (the benchmark's quick setting).
PRETRAIN_STEPS = 600
#: Weight of the within-data-set ranking loss in pretraining (as in the benchmark).
PRETRAIN_RANK_WEIGHT = 1.0


class RunMapping:
    """Mixin: campaign parameters -> runs -> predictor inputs.

    Attributes (set by the world model):
        space: The campaign's search space.
        cfg: The world model's settings.
        lcdb: Whether the predictor is LCDB-pretrained.
        text_params / numeric_params: Non-role categorical / numeric parameters.
    """

    space: SearchSpace
    cfg: dict[str, Any]
    lcdb: bool
    text_params: list[str]
    numeric_params: list[str]
    _metas: dict[str, dict[str, float]]
    _predictor: RunPredictor | None
    _facts: dict[str, Any]

    # -- set-up ----------------------------------------------------------------------------
    def _init_lcdb(self) -> None:
        cfg = self.cfg
        if cfg["anchor_param"] is None and cfg["anchor"] is None:
            raise WorldModelError(
                "pretrain = 'lcdb' needs the training size: set world_model.settings."
                "anchor_param (a parameter) or anchor (a fixed number of examples)"
            )
        if cfg["learner_param"] is None and cfg["learner"] is None:
            raise WorldModelError(
                "pretrain = 'lcdb' needs the learner: set learner_param or learner"
            )
        if cfg["dataset_param"] is None and cfg["dataset"] is None:
            raise WorldModelError("pretrain = 'lcdb' needs the data set: dataset_param or dataset")
        from surrogates.mlrun.data import dataset_table, load_lcdb

        names = (
            [str(c) for c in self.space[cfg["dataset_param"]].choices]
            if cfg["dataset_param"]
            else [str(cfg["dataset"])]
        )
        given = dataset_table(cfg["dataset_meta"] or {})
        for row in given.to_dict("records"):
            self._metas[row.pop("dataset")] = row
        missing = [n for n in names if n not in self._metas]
        if missing:
            data = self._pretrain_data() or load_lcdb()
            for n in missing:
                try:
                    self._metas[n] = data.meta(n)
                except WorldModelError:
                    raise WorldModelError(
                        f"data set {n!r} is neither in LCDB nor in world_model.settings."
                        "dataset_meta; give its meta-features (surrogates.mlrun.data."
                        "meta_features computes them from X, y)"
                    ) from None

    def _pretrain_data(self) -> RunData | None:
        path = self.cfg["pretrain_data"]
        if path is None:
            return None
        if not Path(path).is_file():
            raise WorldModelError(f"world_model.settings.pretrain_data: no file {path}")
        return load_slice(Path(path))

    def _ensure_predictor(self) -> RunPredictor:
        if self._predictor is None:
            steps = int(self.cfg["pretrain_steps"] or PRETRAIN_STEPS)
            config = HeadConfig(steps=steps, rank_weight=PRETRAIN_RANK_WEIGHT)
            self._predictor, self._facts = pretrain_lcdb(
                self.cfg["encoder"], config, progress=True, data=self._pretrain_data()
            )
        return self._predictor

    # -- mapping parameters to runs ----------------------------------------------------------
    def _record(self, params: Mapping[str, Any], extra: Sequence[float] = ()) -> RunRecord:
        cfg = self.cfg
        learner = str(params[cfg["learner_param"]]) if cfg["learner_param"] else cfg["learner"]
        dataset = str(params[cfg["dataset_param"]]) if cfg["dataset_param"] else cfg["dataset"]
        anchor = float(params[cfg["anchor_param"]]) if cfg["anchor_param"] else cfg["anchor"]
        return RunRecord(
            learner=str(learner or "training run"),
            dataset=str(dataset or "campaign data"),
            meta=self._metas.get(str(dataset), {}),
            anchor=float(anchor or 1.0),
            hyperparameters={k: params[k] for k in self.text_params},
            extra=tuple(extra),
        )

    def _extra_unit(self, X: Tensor) -> Tensor:
        """``n x k`` unit-cube coordinates of the numeric non-role parameters (``none`` mode)."""
        if self.lcdb or not self.numeric_params:
            return X[..., :0]
        idx = [self.space.names.index(n) for n in self.numeric_params]
        return X[..., idx]

    def _log2_anchor(self, X: Tensor) -> Tensor | None:
        """``n`` log2 training sizes computed from ``X`` (differentiable), if a parameter."""
        name = self.cfg["anchor_param"]
        if name is None:
            return None
        p = self.space[name]
        u = X[..., self.space.names.index(name)].clamp(0, 1)
        assert p.low is not None and p.high is not None
        if p.log:
            return (math.log(p.low) + u * (math.log(p.high) - math.log(p.low))) / math.log(2)
        return torch.log2(p.low + u * (p.high - p.low))

    def _inputs_from_X(self, X: Tensor) -> Inputs:
        """Standardised inputs for ``n x d`` unit-cube points, differentiable in ``X``."""
        pred = self._predictor
        if pred is None:
            raise WorldModelError("the world model has not been fitted yet; call fit() first")
        params = self.space.decode(X.detach().clamp(0, 1))
        extras = self._extra_unit(X)
        records = [self._record(p) for p in params]
        text = pred.text_features(records)
        columns = []
        la = self._log2_anchor(X)
        columns.append(
            la.unsqueeze(-1)
            if la is not None
            else torch.full((len(records), 1), math.log2(float(self.cfg["anchor"] or 1.0)))
        )
        if pred.use_meta:
            columns.append(torch.tensor([meta_vector(r.meta) for r in records]))
        columns.append(extras)
        if pred.neighbours:
            columns.append(pred.neighbour_features(records))
        numeric = torch.cat([c.to(torch.float32) for c in columns], -1)
        raw = Inputs(text, numeric, pred.curve_features(records))
        return pred.standardise(raw)
