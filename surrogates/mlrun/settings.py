"""Settings of the ML-run world model (``[world_model.settings]``), read and checked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sciwm.errors import WorldModelError
from sciwm.lcdb import RunDataError
from sciwm.lcdb.meta import check_meta
from sciwm.world_model_settings import WorldModelSettings

if TYPE_CHECKING:
    from sciwm.space import SearchSpace

PRETRAIN_MODES = ("none", "lcdb")
LANDMARK_MODES = ("level", "neighbours", "off")


@dataclass(frozen=True)
class MLRunSettings(WorldModelSettings):
    """Settings of :class:`~surrogates.mlrun.model.MLRunWorldModel` (all optional).

    Attributes:
        encoder: ``"minilm"`` (default), ``"smollm2"``, ``"hashing"`` or a model directory.
        pretrain: ``"none"`` (default: trained on the campaign's runs only) or ``"lcdb"``
            (pretrained on LCDB; predicts before any real run).
        learner_param / anchor_param / dataset_param: Names of the campaign parameters that
            hold the learner, the training size and the data set.
        learner / anchor / dataset: Fixed values when no parameter holds them.
        dataset_meta: ``{name: {meta-feature: value}}`` for data sets outside LCDB: the 8 of
            :data:`~sciwm.lcdb.meta.META_FEATURES`, optionally any of
            :data:`~sciwm.lcdb.meta.EXTRA_META`.
        n_members, steps, seed: Ensemble size, optimiser steps, seed (``pretrain = "none"``;
            the LCDB prior uses :data:`~surrogates.mlrun.pretrain.PRIOR_HEAD`); ``seed`` also
            seeds the residual GPs' fits.
        min_points: Completed runs needed before the model learns from them (default 3).
        pretrain_data: Pretrain on this run slice (a parquet file written by
            :func:`sciwm.lcdb.cache.write_slice`) instead of the whole of LCDB.
        pretrain_steps: Optimiser steps of pretraining (default 600, ~15 s on 2 cores).
        landmarks: How completed runs on a data set inform the LCDB prior's other answers
            there (:mod:`surrogates.mlrun.landmarks`): ``"level"`` (default), ``"neighbours"``
            or ``"off"``.
    """

    model_name: ClassVar[str] = "mlrun"

    encoder: str = "minilm"
    pretrain: str = "none"
    learner_param: str | None = None
    anchor_param: str | None = None
    dataset_param: str | None = None
    dataset: str | None = None
    dataset_meta: dict[str, Any] | None = None
    learner: str | None = None
    anchor: float | None = None
    n_members: int = 5
    steps: int = 600
    min_points: int = 3
    pretrain_data: Path | None = None
    pretrain_steps: int | None = None
    landmarks: str = "level"
    seed: int = 0

    @property
    def lcdb(self) -> bool:
        """Whether the predictor is pretrained on LCDB."""
        return self.pretrain == "lcdb"

    def check(self, space: SearchSpace | None) -> None:
        where = "world_model.settings"
        if self.pretrain not in PRETRAIN_MODES:
            raise WorldModelError(
                f"{where}.pretrain must be one of {list(PRETRAIN_MODES)}, got {self.pretrain!r}"
            )
        if self.landmarks not in LANDMARK_MODES:
            raise WorldModelError(
                f"{where}.landmarks must be one of {list(LANDMARK_MODES)}, got {self.landmarks!r}"
            )
        if not self.encoder.strip():
            raise WorldModelError(f"{where}.encoder is empty; use minilm, smollm2 or hashing")
        for key in ("learner_param", "anchor_param", "dataset_param"):
            self.require_parameter(key, space)
        for key in ("n_members", "steps", "min_points", "pretrain_steps"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise WorldModelError(f"{where}.{key} must be at least 1, got {value}")
        if self.anchor is not None and not self.anchor > 0:
            raise WorldModelError(f"{where}.anchor must be a positive size, got {self.anchor}")
        for name, meta in (self.dataset_meta or {}).items():
            if not isinstance(meta, dict):
                raise WorldModelError(f"{where}.dataset_meta.{name} must be a table")
            try:
                check_meta(str(name), meta)
            except RunDataError as exc:
                raise WorldModelError(f"{where}.dataset_meta: {exc}") from None
        if self.lcdb:
            self._check_roles(space)

    def check_files(self) -> None:
        if self.pretrain_data is not None and not self.pretrain_data.is_file():
            raise WorldModelError(
                f"world_model.settings.pretrain_data: no file {self.pretrain_data} (a relative "
                f"path is read from the working directory, here {Path.cwd()}); give the run "
                "slice's path, or leave the setting out to pretrain on the whole of LCDB"
            )

    def _check_roles(self, space: SearchSpace | None) -> None:
        """In LCDB mode every run needs a learner, a training size and a data set."""
        if self.anchor_param is None and self.anchor is None:
            raise WorldModelError(
                "pretrain = 'lcdb' needs the training size: set world_model.settings."
                "anchor_param (a parameter) or anchor (a fixed number of examples)"
            )
        if self.learner_param is None and self.learner is None:
            raise WorldModelError(
                "pretrain = 'lcdb' needs the learner: set learner_param or learner"
            )
        if self.dataset_param is None and self.dataset is None:
            raise WorldModelError("pretrain = 'lcdb' needs the data set: dataset_param or dataset")
        if space is None:
            return
        if self.anchor_param is not None and space[self.anchor_param].kind == "categorical":
            raise WorldModelError(
                f"world_model.settings.anchor_param = {self.anchor_param!r} must name a "
                "numeric (int or float) parameter: it holds the training-set size"
            )
        if self.dataset_param is not None and space[self.dataset_param].kind != "categorical":
            raise WorldModelError(
                f"world_model.settings.dataset_param = {self.dataset_param!r} must name a "
                "categorical parameter whose choices are data set names"
            )


__all__ = ["MLRunSettings"]
