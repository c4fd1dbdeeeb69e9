"""The default world model: one exact GP per outcome and a GP on log cost (botorch/gpytorch)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors import Posterior
from torch import Tensor

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation
from sciwm.prediction import DEFAULT_LEVEL, Estimate, Prediction
from sciwm.space import SearchSpace
from sciwm.world_model import TrainingSummary, WorldModel, check_level, split_by_status
from sciwm.world_model_settings import WorldModelSettings
from surrogates.gp_cache import posterior as cached_posterior
from surrogates.gp_calibration import StdFactors
from surrogates.gp_extrapolation import extrapolation_reasons
from surrogates.gp_fit import fit_or_restore
from surrogates.gp_scalable import (
    DEFAULT_CONDITION_SIZE,
    DEFAULT_SCALABLE_ABOVE,
    DEFAULT_SUBSET_SIZE,
    condition_on,
    hyperparameters,
    retarget,
    subset_indices,
    warm_state,
)
from surrogates.gp_warm import fit_warm_gp, is_warm
from surrogates.marginal import mean_std

logger = logging.getLogger(__name__)

#: The log-cost GP's key among the outcomes' (no outcome name has the parentheses).
COST = "(log cost)"


@dataclasses.dataclass(frozen=True)
class GPSettings(WorldModelSettings):
    """``[world_model.settings]`` of the GP world model.

    Attributes:
        min_points: Fewest observations to fit a GP (at least 2).
        seed: Seed of the hyperparameter fit.
        scalable_above: Observations of an outcome (or of the cost) above which its GP is
            fitted on a subset of ``subset_size`` of them (see :mod:`surrogates.gp_scalable`),
            its hyperparameters starting from the previous fit's; 0: never.
        subset_size: Size of that subset (at least 8).
        condition_size: Results the subset-fitted GP is then conditioned on (its
            hyperparameters kept; :func:`surrogates.gp_scalable.condition_on`); at most
            ``subset_size``: the subset alone.
    """

    model_name: ClassVar[str] = "gp"

    min_points: int = 2
    seed: int = 0
    scalable_above: int = DEFAULT_SCALABLE_ABOVE
    subset_size: int = DEFAULT_SUBSET_SIZE
    condition_size: int = DEFAULT_CONDITION_SIZE

    def check(self, space: SearchSpace | None) -> None:
        if self.min_points < 2:
            raise self.fail("min_points", f"must be at least 2, got {self.min_points}")
        if self.scalable_above < 0:
            raise self.fail("scalable_above", f"must be >= 0 (0: never), got {self.scalable_above}")
        if self.subset_size < 8:
            raise self.fail("subset_size", f"must be at least 8, got {self.subset_size}")
        if self.condition_size < 0:
            raise self.fail("condition_size", f"must be >= 0, got {self.condition_size}")


class GPWorldModel(WorldModel):
    """Exact Gaussian processes on the unit-cube encoding.

    Each outcome gets a ``SingleTaskGP`` (botorch's default: an RBF kernel with one lengthscale
    per dimension under a dimension-scaled log-normal prior, inferred homoscedastic noise,
    standardised targets); the cost gets one on ``log(cost)``, so cost predictions are
    log-normal and always positive. Fitting needs at least ``min_points`` completed experiments
    (and as many with a measured cost).

    Settings (``[world_model.settings]``): see :class:`GPSettings`.
    """

    name: ClassVar[str] = "gp"
    settings_type: ClassVar[type[WorldModelSettings]] = GPSettings

    def __init__(self, space: SearchSpace, outcomes: Sequence[str], **settings: Any) -> None:
        super().__init__(space, outcomes, **settings)
        self.cfg: GPSettings = GPSettings.from_mapping(settings, space)
        self.min_points = self.cfg.min_points
        self.seed = self.cfg.seed
        self._models: dict[str, SingleTaskGP] = {}
        self._cost_model: SingleTaskGP | None = None
        #: Results of each GP fitted on a subset in the last fit, by outcome (or :data:`COST`).
        self._subset: dict[str, int] = {}
        #: Earlier campaigns' results (:meth:`warm_start`), by outcome (or :data:`COST`): X, Y.
        self._prior: dict[str, tuple[Tensor, Tensor]] = {}
        self._prior_models: dict[str, SingleTaskGP] = {}
        #: Cross-validated factors on the predictive stds, by outcome (or COST).
        self._factors = StdFactors(self.seed)

    def warm_start(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> None:
        """Use earlier campaigns' results (in this space) as the prior of every later fit.

        Each outcome's (and the cost's) GP fitted on them becomes the prior mean of the GP
        of this campaign's own results (:mod:`surrogates.gp_warm`), whose weight the new
        results learn; with no result of its own the model is that GP. An outcome with fewer
        than ``min_points`` earlier results gets no prior. The earlier results never count
        as this campaign's (:attr:`summary` lists only its own).
        """
        completed, costed = split_by_status(experiments, observations)
        self._prior, self._prior_models = {}, {}
        for outcome in self.outcomes:
            rows = [(e, o) for e, o in completed if _has(o, outcome)]
            if len(rows) >= self.min_points:
                self._prior[outcome] = self._xy(rows, lambda o, k=outcome: o.outcomes[k])
        if len(costed) >= self.min_points:
            self._prior[COST] = self._xy(costed, lambda o: math.log(o.cost))

    def _xy(
        self, rows: Sequence[tuple[Experiment, Observation]], value: Any
    ) -> tuple[Tensor, Tensor]:
        X = self.space.encode([e.parameters for e, _ in rows]).reshape(-1, self.space.dim)
        return X, torch.tensor([[float(value(o))] for _, o in rows], dtype=torch.double)

    def _fit_one(
        self, what: str, X: Tensor, Y: Tensor, previous: SingleTaskGP | None, subset: dict
    ) -> SingleTaskGP:
        """The GP of one outcome (or :data:`COST`): warm-started when there is a prior."""
        if what not in self._prior:
            return self._fit_gp(X, Y, None, previous, what, subset)
        if what not in self._prior_models:
            Xp, Yp = self._prior[what]
            self._prior_models[what] = self._fit_gp(Xp, Yp, None, None, f"{what} (warm start)")
        old = self._prior_models[what]
        return old if len(X) == 0 else fit_warm_gp(old, X, Y, self.seed, what=what)

    # -- learning -----------------------------------------------------------------------
    def can_fit(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> bool:
        """Whether there are ``min_points`` completed and costed results of every outcome."""
        return self._too_few(*split_by_status(experiments, observations)) is None

    def _too_few(
        self,
        completed: Sequence[tuple[Experiment, Observation]],
        costed: Sequence[tuple[Experiment, Observation]],
    ) -> str | None:
        """Why these results are too few to fit, or ``None``."""
        n = self.min_points
        if self._prior:  # each GP needs its prior or enough results of its own
            names = [*self.outcomes, COST]
            counts = [sum(_has(o, k) for _, o in completed) for k in self.outcomes]
            short = [
                f"{k!r} ({m} results)"
                for k, m in zip(names, [*counts, len(costed)], strict=True)
                if k not in self._prior and m < n
            ]
            if short:
                return f"without an earlier result, {', '.join(short)} need {n} results to fit"
            return None
        if len(completed) < n:
            return (
                f"the GP world model needs at least {n} completed experiments to fit, "
                f"got {len(completed)}"
            )
        if len(costed) < n:
            return (
                f"the GP world model needs at least {n} experiments with a measured cost, "
                f"got {len(costed)}"
            )
        for outcome in self.outcomes:
            m = sum(
                outcome in o.outcomes and math.isfinite(o.outcomes[outcome]) for _, o in completed
            )
            if m < n:
                return f"outcome {outcome!r} was measured in only {m} experiments; need {n}"
        return None

    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        completed, costed = split_by_status(experiments, observations)
        problem = self._too_few(completed, costed)
        if problem is not None:
            raise WorldModelError(problem)
        models: dict[str, SingleTaskGP] = {}
        subset: dict[str, int] = {}
        used: set[str] = set()
        n_used = 0
        for outcome in self.outcomes:
            rows = [
                (e, o)
                for e, o in completed
                if outcome in o.outcomes and math.isfinite(o.outcomes[outcome])
            ]
            X, Y = self._xy(rows, lambda o, k=outcome: o.outcomes[k])
            models[outcome] = self._fit_one(outcome, X, Y, self._models.get(outcome), subset)
            n_used = max(n_used, len(rows))
            used.update(e.id for e, _ in rows)
        Xc, Yc = self._xy(costed, lambda o: math.log(o.cost))
        cost_model = self._fit_one(COST, Xc, Yc, self._cost_model, subset)
        used.update(e.id for e, _ in costed)
        self._models, self._cost_model, self._subset = models, cost_model, subset
        self._factors.refit(
            {k: (m, self._plain(k, m)) for k, m in [*models.items(), (COST, cost_model)]}
        )
        self.summary = TrainingSummary(
            n_observations=n_used,
            n_cost_observations=len(costed),
            outcomes=list(self.outcomes),
            experiment_ids=[e.id for e in experiments if e.id in used],
            extra={
                "kernel": "rbf_ard",
                "targets": "standardized",
                "cost": "log",
                "subset": {k: [self.cfg.subset_size, n] for k, n in subset.items()},
                "warm_start": {k: len(Y) for k, (_, Y) in self._prior.items()},
            },
        )

    def _fit_gp(
        self,
        X: Tensor,
        Y: Tensor,
        state: Mapping[str, Tensor] | None = None,
        previous: SingleTaskGP | None = None,
        what: str = "an outcome",
        subset: dict[str, int] | None = None,
    ) -> SingleTaskGP:
        """An exact GP; past ``scalable_above`` results, one on a subset of them.

        The subset's hyperparameters start from ``previous`` (the last fit of the same
        outcome) when there is one; ``subset`` collects ``what`` with its result count.
        """
        limit = self.cfg.scalable_above
        if state is not None or not limit or len(X) <= limit:
            model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
            model = fit_or_restore(model, state, self.seed)
            return model if state is None else retarget(model, X, Y)  # a conditioned GP's
        keep = subset_indices(Y, self.cfg.subset_size, self.seed)
        model = SingleTaskGP(X[keep], Y[keep], outcome_transform=Standardize(m=1))
        warm = previous is not None and warm_state(model, hyperparameters(previous))
        if subset is not None:
            subset[what] = len(X)
        if what not in self._subset:  # the first fit past the threshold says so
            logger.info(
                "GP world model: %d results of %s exceed scalable_above = %d: fitting an exact "
                "GP on a subset of %d (the highest, the lowest and a random third), conditioned on "
                "%d of them%s",
                len(X),
                what,
                limit,
                len(keep),
                min(len(X), max(len(keep), self.cfg.condition_size)),
                ", starting from the previous fit's hyperparameters" if warm else "",
            )
        model = fit_or_restore(model, None, self.seed, what=f"the GP of {what}")
        return condition_on(model, X, Y, self.cfg.condition_size, self.seed)

    # -- querying -----------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self._models or self._cost_model is None:
            raise WorldModelError(
                "the world model has not been fitted yet; run some real experiments first"
            )

    def posterior(self, X: Tensor, outcome: str) -> Posterior:
        self._require_fitted()
        if outcome not in self._models:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        return cached_posterior(self._models[outcome], X)

    def observation_std(self, X: Tensor, outcome: str) -> Tensor:
        """The fitted measurement noise (homoscedastic), in the outcome's units."""
        self._require_fitted()
        if outcome not in self._models:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        model = self._models[outcome]
        with torch.no_grad():
            noisy = model.posterior(X, observation_noise=True).variance
            latent = model.posterior(X).variance
        return (noisy - latent).clamp_min(0).sqrt().reshape(-1)

    def log_cost_posterior(self, X: Tensor) -> Posterior:
        self._require_fitted()
        assert self._cost_model is not None
        return cached_posterior(self._cost_model, X)

    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = DEFAULT_LEVEL
    ) -> list[Prediction]:
        self._require_fitted()
        level = check_level(level)
        if not parameters:
            return []
        X = self.space.encode(parameters)
        means: dict[str, Tensor] = {}
        stds: dict[str, Tensor] = {}
        reasons: list[str | None] = [None] * len(parameters)
        with torch.no_grad():
            for outcome, model in self._models.items():  # each candidate's own moments
                means[outcome], stds[outcome] = mean_std(model, X, observation_noise=True)
                stds[outcome] = stds[outcome] * self._std_scale(outcome, model)
                for i, why in enumerate(extrapolation_reasons(model, X, self.space)):
                    reasons[i] = reasons[i] or why
            assert self._cost_model is not None
            cmean, cstd = mean_std(self._cost_model, X, observation_noise=True)
            cstd = cstd * self._std_scale(COST, self._cost_model)
        out = []
        for i in range(len(parameters)):
            flag = reasons[i] is not None
            out.append(
                Prediction(
                    outcomes={
                        k: Estimate.gaussian(float(means[k][i]), float(stds[k][i]), level)
                        for k in self._models
                    },
                    cost=Estimate.lognormal(float(cmean[i]), float(cstd[i]), level),
                    extrapolating=flag,
                    notes=[f"outside the training data ({reasons[i]}): trust the interval less"]
                    if flag
                    else [],
                    extrapolating_reason=reasons[i],
                )
            )
        return out

    def _std_scale(self, key: str, model: SingleTaskGP) -> float:
        """Factor on one GP's predictive std in :meth:`predict`: cross-validated, kept across
        refits while the data grew little (:class:`~surrogates.gp_calibration.StdFactors`);
        1 for a warm-started or subset GP."""
        return self._factors.get(key, model, self._plain(key, model))

    def _plain(self, key: str, model: SingleTaskGP) -> bool:
        """Whether ``key``'s GP is fitted exactly on its own results (not warm, no subset)."""
        return not is_warm(model) and key not in self._subset

    # -- persistence --------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        self._require_fitted()
        assert self._cost_model is not None
        tensors: dict[str, Tensor] = {}
        warm = []
        for prefix, model in [
            *((f"o{i}", m) for i, m in enumerate(self._models.values())),
            ("cost", self._cost_model),
        ]:
            self._pack(tensors, prefix, model)
            if is_warm(model):
                self._pack(tensors, f"w.{prefix}", model.sciwm_prior)
                warm.append(prefix)
        # the std factors as this fit has them: a loaded model answers exactly as it did
        for key, model in [*self._models.items(), (COST, self._cost_model)]:
            self._std_scale(key, model)
        return tensors, {
            "outcome_order": list(self._models),
            "warm": warm,
            **self._factors.to_json(),
        }

    @staticmethod
    def _pack(tensors: dict[str, Tensor], prefix: str, model: SingleTaskGP) -> None:
        X = model.train_inputs[0]
        Y, _ = model.outcome_transform.untransform(model.train_targets.unsqueeze(-1))
        tensors[f"{prefix}.X"] = X.detach().clone()
        tensors[f"{prefix}.Y"] = Y.detach().clone()
        for k, v in model.state_dict().items():
            tensors[f"{prefix}.state.{k}"] = v.detach().clone()

    def _unpack(
        self, tensors: Mapping[str, Tensor], prefix: str, warm: Sequence[str] = ()
    ) -> SingleTaskGP:
        state = {
            k[len(prefix) + 7 :]: v for k, v in tensors.items() if k.startswith(f"{prefix}.state.")
        }
        X, Y = tensors[f"{prefix}.X"], tensors[f"{prefix}.Y"]
        if prefix in warm:  # a warm-started GP: its prior GP first
            old = self._unpack(tensors, f"w.{prefix}")
            return fit_warm_gp(old, X, Y, self.seed, state=state)
        return self._fit_gp(X, Y, state)

    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        order = list(extra["outcome_order"])
        warm = list(extra.get("warm", []))
        self._models = {o: self._unpack(tensors, f"o{i}", warm) for i, o in enumerate(order)}
        self._cost_model = self._unpack(tensors, "cost", warm)
        self._factors.load(dict(extra))


def _has(o: Observation, outcome: str) -> bool:
    """Whether ``o`` measured ``outcome`` (a finite value)."""
    return outcome in o.outcomes and math.isfinite(o.outcomes[outcome])
