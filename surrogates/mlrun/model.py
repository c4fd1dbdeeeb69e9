"""``MLRunWorldModel``: a language-model-based world model of ML training runs.

Two modes (``[world_model.settings] pretrain``):

- ``"none"``: a :class:`~surrogates.mlrun.predictor.RunPredictor` is trained from scratch on
  the campaign's runs (categorical parameters rendered as text and embedded by the LM, numeric
  parameters fed as unit-cube coordinates); intervals are calibrated on out-of-bag residuals.
- ``"lcdb"``: the predictor is pretrained on LCDB (learners x data sets x training sizes)
  and answers before any real run. Campaign parameters map to what LCDB describes: a learner
  (``learner_param``), a training size (``anchor_param``) and a data set (``dataset_param`` or
  a fixed ``dataset``; data sets outside LCDB need ``dataset_meta``). Once ``min_points``
  runs are back, a GP on the unit cube models the residuals of the pretrained prediction
  (the pretrained model becomes the GP's prior mean): the model is updated on the campaign's
  own real runs, and campaign-specific factors (this machine's speed, other parameters) are
  learnt there.

Outcome: the first campaign outcome is the run's final metric (LCDB's test accuracy in
``lcdb`` mode); cost is the run's cost, modelled in log space.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from botorch.models import SingleTaskGP
from botorch.posteriors import GPyTorchPosterior, Posterior
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.prediction import Estimate, Prediction
from sciwm.space import SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from surrogates.mlrun.encoders import cached_encoder
from surrogates.mlrun.heads import HeadConfig, Inputs
from surrogates.mlrun.mapping import RunMapping
from surrogates.mlrun.predictor import RunPredictor
from surrogates.mlrun.residuals import ResidualGPs

#: Bounds on log-cost predictions so that exp() stays finite (e^100 s is "never").
MAX_LOG, MAX_LOG_STD = 100.0, 10.0

_SETTINGS = {
    "encoder": "minilm",
    "pretrain": "none",
    "learner_param": None,
    "anchor_param": None,
    "dataset_param": None,
    "dataset": None,
    "dataset_meta": None,
    "learner": None,
    "anchor": None,
    "n_members": 5,
    "steps": 600,
    "min_points": 3,
    "pretrain_data": None,
    "pretrain_steps": None,
    "seed": 0,
}


class MLRunWorldModel(RunMapping, ResidualGPs, WorldModel):
    """LM-embedded descriptions of runs -> calibrated final metric and log cost.

    Settings (``[world_model.settings]``, all optional):
        encoder: ``"minilm"`` (default), ``"smollm2"``, ``"hashing"`` or a model directory.
        pretrain: ``"none"`` (default) or ``"lcdb"``.
        learner_param / anchor_param / dataset_param: Names of the campaign parameters that
            hold the learner, the training size and the data set.
        learner / anchor / dataset: Fixed values when no parameter holds them.
        dataset_meta: ``{name: {meta-feature: value}}`` for data sets outside LCDB.
        n_members, steps, seed: Ensemble size, optimiser steps, seed (``pretrain = "none"``;
            the LCDB model uses its own defaults).
        min_points: Completed runs needed before the model is updated on them (default 3).
        pretrain_data: Pretrain on this run slice (a parquet file written by
            :func:`surrogates.mlrun.data.write_slice`) instead of the whole of LCDB.
        pretrain_steps: Optimiser steps of pretraining (default 600, ~15 s on 2 cores).
    """

    name: ClassVar[str] = "mlrun"

    def __init__(self, space: SearchSpace, outcomes: Sequence[str], **settings: Any) -> None:
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise WorldModelError(
                f"unknown setting(s) {unknown} for the 'mlrun' world model; known: "
                f"{sorted(_SETTINGS)}"
            )
        super().__init__(space, outcomes, **settings)
        cfg = {**_SETTINGS, **settings}
        if cfg["pretrain"] not in ("none", "lcdb"):
            raise WorldModelError(f"pretrain must be 'none' or 'lcdb', got {cfg['pretrain']!r}")
        self.cfg = cfg
        for key in ("learner_param", "anchor_param", "dataset_param"):
            if cfg[key] is not None and cfg[key] not in space.names:
                raise WorldModelError(
                    f"world_model.settings.{key} = {cfg[key]!r} is not a parameter of the "
                    f"space ({space.names})"
                )
        roles = {cfg["learner_param"], cfg["anchor_param"], cfg["dataset_param"]} - {None}
        self.text_params = [
            p.name for p in space.parameters if p.kind == "categorical" and p.name not in roles
        ]
        self.numeric_params = [
            p.name for p in space.parameters if p.kind != "categorical" and p.name not in roles
        ]
        self.lcdb = cfg["pretrain"] == "lcdb"
        self._metas: dict[str, dict[str, float]] = {}
        self._predictor: RunPredictor | None = None
        self._facts: dict[str, Any] = {}
        self._gps: dict[int, SingleTaskGP] = {}  # target index -> residual GP (lcdb mode)
        if self.lcdb:
            self._init_lcdb()
        else:
            self._encoder = cached_encoder(str(cfg["encoder"]))

    # -- learning ----------------------------------------------------------------------------
    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        completed, costed = split_by_status(experiments, observations)
        by_id = {o.experiment_id: o for o in observations}
        pairs = list(zip(experiments, observations, strict=True))
        keep = {e.id for e, _ in completed} | {e.id for e, _ in costed}
        used = [e.id for e, _ in pairs if e.id in keep]
        n_out = len(completed)
        if self.lcdb:
            self._ensure_predictor()
            self._fit_residuals(completed, costed)
        else:
            if n_out < self.cfg["min_points"] or len(costed) < self.cfg["min_points"]:
                raise WorldModelError(
                    f"the mlrun world model (pretrain = 'none') needs at least "
                    f"{self.cfg['min_points']} completed runs with a cost, got {n_out}; "
                    "or use pretrain = 'lcdb' to predict before any run"
                )
            rows = [(e, by_id[e.id]) for e in experiments if e.id in set(used)]
            self._fit_scratch(rows)
        self.summary = TrainingSummary(
            n_observations=n_out,
            n_cost_observations=len(costed),
            outcomes=list(self.outcomes),
            experiment_ids=[e.id for e in experiments if e.id in set(used)],
            extra={
                "encoder": self.cfg["encoder"],
                "pretrain": self.cfg["pretrain"],
                "pretrained_on": self._facts,
                "residual_gp": sorted(self._gps),
            },
        )

    def _fit_scratch(self, rows: list[tuple[Experiment, Observation]]) -> None:
        X = self.space.encode([e.parameters for e, _ in rows])
        records = [
            self._record(e.parameters, self._extra_unit(X[i]).tolist())
            for i, (e, _) in enumerate(rows)
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
            n_members=int(self.cfg["n_members"]),
            steps=int(self.cfg["steps"]),
            batch_size=64,
            seed=int(self.cfg["seed"]),
            curve_hidden=0,
        )
        pred = RunPredictor(self._encoder, [*self.outcomes, "log_cost"], config, use_meta=False)
        pred.fit(records, y)
        self._predictor = pred
        self._facts = {"n_runs": len(rows), "encoder": self._encoder.id}

    # -- querying ----------------------------------------------------------------------------
    def _require(self) -> RunPredictor:
        if self._predictor is None or self.summary is None:
            raise WorldModelError(
                "the world model has not been fitted yet; call fit() (with no runs, a "
                "pretrain = 'lcdb' model answers from LCDB alone)"
            )
        return self._predictor

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
        X = self.space.encode(rows)
        with torch.no_grad():
            far = self._far(rows, X)
            est: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
            for j in {
                *(self._target_index(o) for o in self._outcomes_modelled()),
                self._cost_index(),
            }:
                mvn = self._posterior(X.unsqueeze(-2), j, noise=True)
                mean = mvn.mean.squeeze(-1)
                std = mvn.variance.clamp_min(0).sqrt().squeeze(-1)
                if j in self._gps:
                    hw = std * _z(level)
                else:
                    hw = pred.interval_halfwidth(j, std.float(), level).to(std.dtype)
                est[j] = (mean, std, hw)
        out = []
        for i in range(len(rows)):
            outcomes = {}
            for name in self._outcomes_modelled():
                m, s, h = (float(t[i]) for t in est[self._target_index(name)])
                lo, hi = m - h, m + h
                if self.lcdb:  # LCDB's metric is an accuracy: report it within [0, 1]
                    m, lo, hi = (min(1.0, max(0.0, v)) for v in (m, lo, hi))
                outcomes[name] = Estimate(m, s, lo, hi, level)
            m, s, h = (float(t[i]) for t in est[self._cost_index()])
            # keep exp() finite however wild an extrapolation is (it is flagged below)
            m, s, h = max(-MAX_LOG, min(MAX_LOG, m)), min(s, MAX_LOG_STD), min(h, MAX_LOG)
            cost = Estimate.lognormal(m, s, level)
            cost = Estimate(cost.mean, cost.std, math.exp(m - h), math.exp(m + h), level)
            flag = bool(far[i])
            out.append(
                Prediction(
                    outcomes=outcomes,
                    cost=cost,
                    extrapolating=flag,
                    notes=[
                        "far from the training data (unseen learner or numbers out of "
                        "range): trust the interval less"
                    ]
                    if flag
                    else [],
                )
            )
        return out

    def _outcomes_modelled(self) -> list[str]:
        return self.outcomes[:1] if self.lcdb else list(self.outcomes)

    def _far(self, rows: list[dict], X: Tensor) -> Tensor:
        pred = self._require()
        records = [self._record(r) for r in rows]
        raw_text = pred.text_features(records)
        x = self._inputs_from_X(X)
        return pred.far(Inputs(raw_text, x.numeric, x.curve), x)

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        pred = self._require()
        tensors = {f"predictor.{k}": v for k, v in pred.state().items()}
        for j, gp in self._gps.items():
            tensors[f"gp{j}.X"] = gp.train_inputs[0].detach().clone()
            Y, _ = gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))
            tensors[f"gp{j}.Y"] = Y.detach().clone()
            for k, v in gp.state_dict().items():
                tensors[f"gp{j}.state.{k}"] = v.detach().clone()
        extra = {
            "facts": self._facts,
            "text_dim": int(pred.stats["text_mean"].numel()),
            "numeric_dim": int(pred.stats["num_mean"].numel()),
            "gps": sorted(self._gps),
            "targets": pred.targets,
            "config": pred.config.to_dict(),
            "use_meta": pred.use_meta,
        }
        return tensors, extra

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        encoder = cached_encoder(str(self.cfg["encoder"]))
        pred = RunPredictor(
            encoder, extra["targets"], HeadConfig(**extra["config"]), use_meta=extra["use_meta"]
        )
        pred.load_state(
            {k[10:]: v for k, v in tensors.items() if k.startswith("predictor.")},
            int(extra["text_dim"]),
            int(extra["numeric_dim"]),
        )
        self._predictor, self._facts = pred, dict(extra["facts"])
        self._gps = {}
        for j in extra["gps"]:
            state = {
                k[len(f"gp{j}.state.") :]: v
                for k, v in tensors.items()
                if k.startswith(f"gp{j}.state.")
            }
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._gps[int(j)] = self._residual_gp(
                    tensors[f"gp{j}.X"], tensors[f"gp{j}.Y"], state
                )


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
