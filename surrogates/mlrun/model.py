"""``MLRunWorldModel``: a language-model-based world model of ML training runs.

Two modes (``[world_model.settings] pretrain``):

- ``"none"``: a :class:`~surrogates.mlrun.predictor.RunPredictor` is trained from scratch on
  the campaign's runs (categorical parameters rendered as text and embedded by the LM, numeric
  parameters fed as unit-cube coordinates); intervals are calibrated on out-of-bag residuals.
- ``"lcdb"``: the predictor is pretrained on LCDB (learners x data sets x training sizes;
  :func:`~surrogates.mlrun.pretrain.fit_prior`, the predictor ``sciwm bench mlrun``
  measures) and answers before any real run, so it steers from the first proposal.
  Campaign parameters map to what LCDB describes: a learner (``learner_param``), a training
  size (``anchor_param``) and a data set (``dataset_param`` or a fixed ``dataset``; data
  sets outside LCDB need ``dataset_meta``). Once ``min_points``
  runs are back, a GP on the unit cube models the residuals of the pretrained prediction
  (the pretrained model becomes the GP's prior mean): the model is updated on the campaign's
  own real runs, and campaign-specific factors (this machine's speed, other parameters) are
  learnt there.

Outcome: the first campaign outcome is the run's final metric (LCDB's test accuracy in
``lcdb`` mode); cost is the run's cost, modelled in log space.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from botorch.posteriors import GPyTorchPosterior, Posterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.lcdb import RunDataError
from sciwm.lcdb.runs import RunData
from sciwm.prediction import Estimate, Prediction
from sciwm.space import SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from surrogates.mlrun.encoders import TextEncoder, cached_encoder
from surrogates.mlrun.heads import HeadConfig, Inputs, cpu_threads
from surrogates.mlrun.landmarks import CampaignLandmarks
from surrogates.mlrun.mapping import RunMapping, dataset_metas, missing_metas
from surrogates.mlrun.moments import MomentsCache
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.pretrain import PRIOR_HEAD, pretrain_lcdb
from surrogates.mlrun.residuals import ResidualGPs
from surrogates.mlrun.settings import MLRunSettings

#: Bounds on log-cost predictions so that exp() stays finite (e^100 s is "never").
MAX_LOG, MAX_LOG_STD = 100.0, 10.0


@contextmanager
def _as_world_model_error() -> Iterator[None]:
    """Report a bad run table or missing LCDB files as the world model's error."""
    try:
        yield
    except RunDataError as exc:
        raise WorldModelError(f"the mlrun world model: {exc}") from exc


class MLRunWorldModel(WorldModel):
    """LM-embedded descriptions of runs -> calibrated final metric and log cost.

    Settings: :class:`~surrogates.mlrun.settings.MLRunSettings`. The pieces it holds:

    - ``mapping`` (:class:`~surrogates.mlrun.mapping.RunMapping`): campaign parameters ->
      runs -> predictor inputs;
    - ``predictor`` (:class:`~surrogates.mlrun.predictor.RunPredictor`): pretrained on LCDB
      (:func:`~surrogates.mlrun.pretrain.pretrain_lcdb`) or trained on the campaign's runs;
    - ``residuals`` (:class:`~surrogates.mlrun.residuals.ResidualGPs`, LCDB mode): GPs on
      the residuals of the pretrained prediction.
    """

    name: ClassVar[str] = "mlrun"
    settings_type: ClassVar[type[MLRunSettings]] = MLRunSettings

    def __init__(self, space: SearchSpace, outcomes: Sequence[str], **settings: Any) -> None:
        super().__init__(space, outcomes, **settings)
        cfg = self.cfg = self.settings_type.from_mapping(settings, space)
        self.lcdb = self.cfg.lcdb
        metas: dict[str, dict[str, float]] = {}
        if self.lcdb:
            with _as_world_model_error():
                data = self.pretrain_data() if missing_metas(self.cfg, space) else None
                metas = dataset_metas(self.cfg, space, data)
        self.mapping = RunMapping(space, self.cfg, metas)
        self.residuals = ResidualGPs(space, cfg.min_points, cfg.seed, cfg.anchor_param)
        self.predictor: RunPredictor | None = None
        self.facts: dict[str, Any] = {}
        #: LCDB mode: completed runs used as landmarks of their data set.
        self.landmarks = CampaignLandmarks(self.cfg.landmarks)
        #: The predictor's record and moments (before landmarks) of points asked before.
        self._moments = MomentsCache()

    # -- pretraining -------------------------------------------------------------------------
    def pretrain_data(self) -> RunData:
        """What the LCDB prior is trained on: the ``pretrain_data`` slice, or the whole of LCDB."""
        from sciwm.lcdb.cache import load_lcdb, load_slice

        self.cfg.check_files()
        with _as_world_model_error():
            if self.cfg.pretrain_data is not None:
                return load_slice(self.cfg.pretrain_data)
            return load_lcdb(progress=True)

    def prior_head(self) -> HeadConfig:
        """Head settings of the LCDB prior (:data:`~surrogates.mlrun.pretrain.PRIOR_HEAD`,
        with ``pretrain_steps`` if set)."""
        if self.cfg.pretrain_steps is None:
            return PRIOR_HEAD
        return dataclasses.replace(PRIOR_HEAD, steps=self.cfg.pretrain_steps)

    def _ensure_prior(self) -> RunPredictor:
        if self.predictor is None:
            data = self.pretrain_data() if self.cfg.pretrain_data is not None else None
            with _as_world_model_error():
                self.predictor, self.facts = pretrain_lcdb(
                    self.cfg.encoder, self.prior_head(), progress=True, data=data
                )
            self.mapping = self.mapping.with_extra_fill(self.facts["extra_fill"])
        return self.predictor

    # -- learning ----------------------------------------------------------------------------
    def spawn(self) -> MLRunWorldModel:
        """A new unfitted copy whose residual GPs start from this model's hyperparameters."""
        fresh = type(self)(self.space, self.outcomes, **self.settings)
        fresh.residuals.inherit(self.residuals)
        return fresh

    def can_fit(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> bool:
        """LCDB mode: always (the prior answers before any real run); otherwise once
        ``min_points`` completed runs with a cost are back."""
        if self.lcdb:
            return True
        completed, costed = split_by_status(experiments, observations)
        return min(len(completed), len(costed)) >= self.cfg.min_points

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        completed, costed = split_by_status(experiments, observations)
        by_id = {o.experiment_id: o for o in observations}
        keep = {e.id for e, _ in completed} | {e.id for e, _ in costed}
        used = [e for e in experiments if e.id in keep]
        if self.lcdb:
            self._ensure_prior()
            self._fit_landmarks(completed)
            self._fit_residuals(completed, costed)
        else:
            if min(len(completed), len(costed)) < self.cfg.min_points:
                raise WorldModelError(
                    f"the mlrun world model (pretrain = 'none') needs at least "
                    f"{self.cfg.min_points} completed runs with a cost, got {len(completed)}; "
                    "or use pretrain = 'lcdb' to predict before any run"
                )
            self._fit_scratch([(e, by_id[e.id]) for e in used])
        self.summary = TrainingSummary(
            n_observations=len(completed),
            n_cost_observations=len(costed),
            outcomes=list(self.outcomes),
            experiment_ids=[e.id for e in used],
            extra={
                "encoder": self.cfg.encoder,
                "pretrain": self.cfg.pretrain,
                "pretrained_on": self.facts,
                "residual_gp": self.residuals.targets,
            },
        )

    def _fit_landmarks(self, completed: list) -> None:
        """Completed runs with the first outcome become landmarks of their data set."""
        pairs = [(e, o.outcomes.get(self.outcomes[0])) for e, o in completed]
        pairs = [(e, v) for e, v in pairs if v is not None and math.isfinite(v)]
        self.landmarks.clear()
        if not pairs or self.predictor is None:
            return
        X = self.space.encode([e.parameters for e, _ in pairs])
        with torch.no_grad():
            mean, std = self._prior_moments(X)  # before any landmark
        records = [self.mapping.record(e.parameters) for e, _ in pairs]
        self.landmarks.fit(self.predictor, records, [v for _, v in pairs], mean[:, 0], std[:, 0])

    def _fit_residuals(self, completed: list, costed: list) -> None:
        """Residual GPs of the first outcome and of log cost, on the unit cube."""
        sets = {
            0: [(e, o.outcomes.get(self.outcomes[0])) for e, o in completed],
            1: [(e, math.log(o.cost)) for e, o in costed],
        }
        rows = {}
        for j, pairs in sets.items():
            pairs = [(e, v) for e, v in pairs if v is not None and math.isfinite(v)]
            if not pairs:
                continue
            X = self.space.encode([e.parameters for e, _ in pairs])
            with torch.no_grad():
                mean, _ = self._prior_moments(X)
            r = torch.tensor([v for _, v in pairs], dtype=torch.double) - mean[:, j].double()
            rows[j] = (X, r)
        self.residuals.fit(rows)

    def _fit_scratch(self, rows: list[tuple[Experiment, Observation]]) -> None:
        X = self.space.encode([e.parameters for e, _ in rows])
        unit = self.mapping.unit_extras(X)
        records = [
            self.mapping.record(e.parameters, unit[i].tolist()) for i, (e, _) in enumerate(rows)
        ]
        y = torch.full((len(rows), len(self.outcomes) + 1), float("nan"))
        for i, (_, o) in enumerate(rows):
            for j, name in enumerate(self.outcomes):
                v = o.outcomes.get(name)
                if o.status.value == "completed" and v is not None and math.isfinite(v):
                    y[i, j] = float(v)
            if o.cost is not None and math.isfinite(o.cost) and o.cost > 0:
                y[i, -1] = math.log(o.cost)
        config = HeadConfig(
            hidden=64,
            n_members=self.cfg.n_members,
            steps=self.cfg.steps,
            batch_size=64,
            seed=self.cfg.seed,
            curve_hidden=0,
        )
        encoder = self._encoder()
        pred = RunPredictor(encoder, [*self.outcomes, "log_cost"], config, use_meta=False)
        pred.fit(records, y)
        self.predictor = pred
        self.facts = {"n_runs": len(rows), "encoder": encoder.id}

    def _encoder(self) -> TextEncoder:
        with _as_world_model_error():
            return cached_encoder(self.cfg.encoder)

    # -- the predictor's and the residual GPs' Gaussians -------------------------------------
    def _prior_moments(
        self, X: Tensor, records: list | None = None, x: Inputs | None = None
    ) -> tuple[Tensor, Tensor]:
        """Calibrated ``(mean, std)`` of the predictor, ``n x t``, differentiable in ``X``.

        Args:
            X: A ``n x d`` tensor of unit-cube points.
            records: Their runs (:meth:`RunMapping.runs`), if already decoded.
            x: Their standardised inputs (:meth:`RunMapping.inputs`), if already built.
        """
        pred = self.predictor
        if pred is None:
            raise WorldModelError("the world model has not been fitted yet; call fit() first")
        if records is None and x is None and len(X) and not X.requires_grad:
            records, mean, std = self._moments.get(pred, self.mapping, X)
            return self._with_landmarks(pred, records, mean, std)
        records = self.mapping.runs(X) if records is None else records
        x = self.mapping.inputs(pred, X, records) if x is None else x
        with cpu_threads(1):  # tiny heads: one thread is ~10x faster than two busy ones
            mean, std = pred.predict_standardised(x)
        return self._with_landmarks(pred, records, mean, std)

    def _with_landmarks(
        self, pred: RunPredictor, records: list, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        if not self.landmarks:
            return mean, std
        return self.landmarks.apply(pred, records, mean, std)

    def _posterior(self, X: Tensor, j: int, noise: bool = False) -> MultivariateNormal:
        """Joint Gaussian of target ``j`` over the last-but-one dim of ``X`` (``b x q x d``)."""
        batch = X.shape[:-1]
        mean, std = self._prior_moments(X.reshape(-1, X.shape[-1]))
        mean = mean[:, j].to(X.dtype).reshape(batch)
        var = (std[:, j] ** 2).to(X.dtype).reshape(batch)
        return self.residuals.combine(X, j, mean, var, noise)

    # -- querying ----------------------------------------------------------------------------
    def _require(self) -> RunPredictor:
        if self.predictor is None or self.summary is None:
            raise WorldModelError(
                "the world model has not been fitted yet; call fit() (with no runs, a "
                "pretrain = 'lcdb' model answers from LCDB alone)"
            )
        return self.predictor

    def _target_index(self, outcome: str) -> int:
        if outcome not in self.outcomes:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        if self.lcdb:
            if outcome != self.outcomes[0]:
                raise WorldModelError(
                    f"in pretrain = 'lcdb' mode only the first outcome ({self.outcomes[0]!r}) "
                    f"is modelled, not {outcome!r}"
                )
            return 0
        return self.outcomes.index(outcome)

    def _cost_index(self) -> int:
        return 1 if self.lcdb else len(self.outcomes)

    def posterior(self, X: Tensor, outcome: str) -> Posterior:
        j = self._target_index(outcome)
        return GPyTorchPosterior(self._posterior(X, j))

    def log_cost_posterior(self, X: Tensor) -> Posterior:
        return GPyTorchPosterior(self._posterior(X, self._cost_index()))

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = 0.9
    ) -> list[Prediction]:
        pred = self._require()
        level = check_level(level)
        if not parameters:
            return []
        rows = [self.space.validate(p) for p in parameters]
        X = self.space.encode_valid(rows)
        # one thread: the batch's tensors are small (1,000 x 384 at most), and two threads on
        # busy cores made a batch 2-3x slower
        with torch.no_grad(), cpu_threads(1):
            # one pass of features for every target (and the far-from-data check)
            records = [self.mapping.record(r) for r in rows]
            raw = self.mapping.raw_inputs(pred, X, records)
            x = pred.standardise(raw)
            far = pred.far_reasons(raw, x)
            prior_mean, prior_std = self._prior_moments(X, records, x)
            size, full = pred.record_sizes(records)
            est: dict[int, tuple[list[float], list[float], list[float]]] = {}
            for j in {
                *(self._target_index(o) for o in self._outcomes_modelled()),
                self._cost_index(),
            }:
                mean, var = self.residuals.marginal(
                    X,
                    j,
                    prior_mean[:, j].to(X.dtype),
                    (prior_std[:, j] ** 2).to(X.dtype),
                    noise=True,
                )
                std = var.clamp_min(0).sqrt()
                if j in self.residuals.gps:
                    hw = std * _z(level)
                else:
                    hw = pred.interval_halfwidth(j, std.float(), level, size, full)
                    hw = hw.to(std.dtype)
                est[j] = (mean.tolist(), std.tolist(), hw.tolist())
        modelled = [(name, est[self._target_index(name)]) for name in self._outcomes_modelled()]
        cost_mean, cost_std, cost_hw = est[self._cost_index()]
        out = []
        for i, why in enumerate(far):
            outcomes = {}
            for name, (means, stds, hws) in modelled:
                m, s, h = means[i], stds[i], hws[i]
                lo, hi = m - h, m + h
                if self.lcdb:  # LCDB's metric is an accuracy: report it within [0, 1]
                    m, lo, hi = (min(1.0, max(0.0, v)) for v in (m, lo, hi))
                outcomes[name] = Estimate(m, s, lo, hi, level)
            m, s, h = cost_mean[i], cost_std[i], cost_hw[i]
            # keep exp() finite however wild an extrapolation is (it is flagged below)
            m, s, h = max(-MAX_LOG, min(MAX_LOG, m)), min(s, MAX_LOG_STD), min(h, MAX_LOG)
            cost = Estimate.lognormal(m, s, level)
            cost = Estimate(cost.mean, cost.std, math.exp(m - h), math.exp(m + h), level)
            out.append(
                Prediction(
                    outcomes=outcomes,
                    cost=cost,
                    extrapolating=why is not None,
                    notes=[f"far from the training data ({why}): trust the interval less"]
                    if why
                    else [],
                    extrapolating_reason=why,
                )
            )
        return out

    def _outcomes_modelled(self) -> list[str]:
        return self.outcomes[:1] if self.lcdb else list(self.outcomes)

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        pred = self._require()
        tensors = {f"predictor.{k}": v for k, v in pred.state().items()}
        tensors.update(self.residuals.state())
        extra = {
            "facts": self.facts,
            "text_dim": int(pred.stats["text_mean"].numel()),
            "numeric_dim": int(pred.stats["num_mean"].numel()),
            "gps": self.residuals.targets,
            "targets": pred.targets,
            "config": pred.config.to_dict(),
            "use_meta": pred.use_meta,
            "landmarks": self.landmarks.to_json(),
        }
        return tensors, extra

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        pred = RunPredictor(
            self._encoder(),
            extra["targets"],
            HeadConfig(**extra["config"]),
            use_meta=extra["use_meta"],
        )
        pred.load_state(
            {k[10:]: v for k, v in tensors.items() if k.startswith("predictor.")},
            int(extra["text_dim"]),
            int(extra["numeric_dim"]),
        )
        self.predictor, self.facts = pred, dict(extra["facts"])
        if self.lcdb:
            self.mapping = self.mapping.with_extra_fill(self.facts["extra_fill"])
        self.residuals.load_state(tensors, [int(j) for j in extra["gps"]])
        self.landmarks = CampaignLandmarks.from_json(
            {"mode": self.cfg.landmarks, **extra.get("landmarks", {})}
        )


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
