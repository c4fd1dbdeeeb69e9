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
from pathlib import Path
from typing import Any, ClassVar

import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors import GPyTorchPosterior, Posterior
from gpytorch.distributions import MultivariateNormal
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.prediction import Estimate, Prediction
from sciwm.space import SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from surrogates.gp_fit import fit_or_restore
from surrogates.mlrun.data import RunData, load_slice
from surrogates.mlrun.encoders import cached_encoder
from surrogates.mlrun.heads import HeadConfig, Inputs, cpu_threads
from surrogates.mlrun.predictor import RunPredictor, RunRecord, meta_vector
from surrogates.mlrun.pretrain import pretrain_lcdb

#: Bounds on log-cost predictions so that exp() stays finite (e^100 s is "never").
MAX_LOG, MAX_LOG_STD = 100.0, 10.0
#: Optimiser steps of LCDB pretraining (the benchmark's quick setting).
PRETRAIN_STEPS = 600

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


class MLRunWorldModel(WorldModel):
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
            config = HeadConfig(steps=steps)
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
        numeric = torch.cat([c.to(torch.float32) for c in columns], -1)
        raw = Inputs(text, numeric, pred.curve_features(records))
        return pred.standardise(raw)

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

    def _fit_residuals(self, completed: list, costed: list) -> None:
        """Residual GPs of the first outcome and of log cost, on the unit cube."""

        self._gps = {}
        sets = {0: [(e, o.outcomes.get(self.outcomes[0])) for e, o in completed]}
        sets[1] = [(e, math.log(o.cost)) for e, o in costed]
        for j, rows in sets.items():
            rows = [(e, v) for e, v in rows if v is not None and math.isfinite(v)]
            if len(rows) < self.cfg["min_points"]:
                continue
            X = self.space.encode([e.parameters for e, _ in rows])
            with torch.no_grad():
                mean, _ = self._predictor_moments(X)
            r = torch.tensor([v for _, v in rows], dtype=torch.double) - mean[:, j].double()
            self._gps[j] = self._residual_gp(X, r.unsqueeze(-1))

    def _residual_gp(
        self, X: Tensor, Y: Tensor, state: Mapping[str, Tensor] | None = None
    ) -> SingleTaskGP:
        """A GP on residuals; categorical parameters get a categorical kernel.

        With ``MixedSingleTaskGP`` a residual learnt on one learner is not smeared onto the
        learners next to it in the encoding order (they are not "near" each other).
        """
        cat = [i for i, p in enumerate(self.space.parameters) if p.kind == "categorical"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cat and len(cat) < self.space.dim:
                model = MixedSingleTaskGP(X, Y, cat_dims=cat, outcome_transform=Standardize(m=1))
            else:
                model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
        return fit_or_restore(model, state, int(self.cfg["seed"]), "the residual GP")

    # -- querying ----------------------------------------------------------------------------
    def _require(self) -> RunPredictor:
        if self._predictor is None or self.summary is None:
            raise WorldModelError(
                "the world model has not been fitted yet; call fit() (with no runs, a "
                "pretrain = 'lcdb' model answers from LCDB alone)"
            )
        return self._predictor

    def _predictor_moments(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Calibrated ``(mean, std)`` of the predictor, ``n x t``, differentiable in ``X``."""
        pred = self._predictor
        assert pred is not None
        with cpu_threads(1):  # tiny heads: one thread is ~10x faster than two busy ones
            return pred.predict_standardised(self._inputs_from_X(X))

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

    def _posterior(self, X: Tensor, j: int, noise: bool = False) -> MultivariateNormal:
        """Joint Gaussian of target ``j`` over the last-but-one dim of ``X`` (``b x q x d``)."""
        self._require()
        batch = X.shape[:-1]
        flat = X.reshape(-1, X.shape[-1])
        mean, std = self._predictor_moments(flat)
        mean = mean[:, j].to(X.dtype).reshape(batch)
        var = (std[:, j] ** 2).to(X.dtype).reshape(batch)
        gp = self._gps.get(j)
        if gp is not None:
            post = gp.posterior(X.to(torch.double), observation_noise=noise)
            mvn = post.distribution
            cov = mvn.covariance_matrix.to(X.dtype)
            # jitter: candidate batches hold near-duplicates (pending points, snapped sizes)
            diag = cov.diagonal(dim1=-2, dim2=-1)
            eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
            cov = cov + eye * (1e-6 * diag.mean(-1, keepdim=True).unsqueeze(-1) + 1e-9)
            # A category (e.g. a learner) no real run has tried keeps the pretrained model's
            # uncertainty: a GP fitted on a handful of runs cannot know how it differs.
            unseen = self._unseen_categories(X, gp.train_inputs[0]).to(X.dtype)
            cov = cov + torch.diag_embed(var.clamp_min(0) * unseen)
            return MultivariateNormal(mvn.mean.to(X.dtype) + mean, cov)
        return MultivariateNormal(mean, torch.diag_embed(var.clamp_min(1e-12)))

    def _unseen_categories(self, X: Tensor, train_X: Tensor) -> Tensor:
        """``batch_shape x q`` flags: a categorical value of ``X`` absent from ``train_X``."""
        out = torch.zeros(X.shape[:-1], dtype=torch.bool)
        for i, p in enumerate(self.space.parameters):
            if p.kind != "categorical":
                continue
            k = len(p.choices) - 1
            seen = torch.zeros(k + 1, dtype=torch.bool)
            seen[(train_X[..., i].clamp(0, 1) * k).round().long().flatten()] = True
            idx = (X[..., i].detach().clamp(0, 1) * k).round().long()
            out |= ~seen[idx]
        return out

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
