"""The Python front door: ask a campaign's world model from a notebook or a script.

>>> import sciwm
>>> camp = sciwm.open_campaign("demo-digits")          # doctest: +SKIP
>>> camp.status()["best"]                              # doctest: +SKIP
>>> camp.rank([{"learning_rate": 0.1, "max_iter": 50}, ...])  # doctest: +SKIP

Nothing here runs a real experiment or imports Prefect. The world model is loaded once and
reloaded when the campaign logs a newer one (checked at most every ``reload_check_s``).
:meth:`Campaign.rank` orders candidates by the campaign's own acquisition, the scheduler's
(:func:`scheduler.acquisition.build_acquisition`), i.e. by value per unit of predicted cost
for a cost-aware campaign.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sciwm.api_models import RELOAD_CHECK_S, ModelCache, NotReadyError
from sciwm.errors import ParameterError
from sciwm.prediction import Prediction

if TYPE_CHECKING:
    import pandas as pd

    from sciwm.spec import CampaignSpec
    from sciwm.store import Record, RecordStore
    from sciwm.world_model import WorldModel


@dataclass(frozen=True)
class Ranked:
    """One candidate of :meth:`Campaign.rank`, in rank order.

    Attributes:
        rank: 1 for the candidate the agent would run first.
        parameters: The candidate, validated and in the space's order.
        prediction: The world model's prediction of its outcomes and cost.
        value: The acquisition value (higher is better; ``-inf`` for no expected gain).
        why: One sentence: the acquisition, its parts and the predicted cost.
    """

    rank: int
    parameters: dict[str, Any]
    prediction: Prediction
    value: float
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (a non-finite value becomes ``None``)."""
        return {
            "rank": self.rank,
            "parameters": dict(self.parameters),
            "prediction": self.prediction.to_dict(),
            "value": self.value if math.isfinite(self.value) else None,
            "why": self.why,
        }


def open_campaign(
    name: str, tracking_uri: str | None = None, reload_check_s: float = RELOAD_CHECK_S
) -> Campaign:
    """Open a campaign of the record store.

    Args:
        name: The campaign (its MLflow experiment's name).
        tracking_uri: The MLflow store (default: ``$MLFLOW_TRACKING_URI``, else
            ``sqlite:///./mlflow.db``).
        reload_check_s: Seconds between checks for a newer logged world model.

    Raises:
        StoreError: If the store cannot be reached or holds no such campaign (the message
            lists the known ones).
    """
    from sciwm.store import RecordStore

    return Campaign(RecordStore(tracking_uri), name, reload_check_s)


class Campaign:
    """A campaign read back from the record store, with its world model.

    Args:
        store: The record store.
        name: The campaign.
        reload_check_s: Seconds between checks for a newer logged world model.
        background: Check (and load a newer model) in a background thread while questions
            are answered by the current one (the service); else in the asking call.

    Raises:
        StoreError: If there is no such campaign.
    """

    def __init__(
        self,
        store: RecordStore,
        name: str,
        reload_check_s: float = RELOAD_CHECK_S,
        background: bool = False,
    ) -> None:
        self.store = store
        self.name = name
        self.spec: CampaignSpec = store.campaign_spec(name)
        self.space = self.spec.space()
        self._ask = threading.Lock()  # one question at a time: models cache lazily
        self._models = ModelCache(store, self.spec, name, reload_check_s, background)

    @property
    def tracking_uri(self) -> str:
        """The store's tracking URI."""
        return self.store.tracking_uri

    # -- reading ------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Every experiment of the campaign, by sequence number."""
        return self.store.records(self.name)

    def status(self) -> dict[str, Any]:
        """Where the campaign stands, as a JSON-serialisable dict.

        Returns:
            ``name``, ``objective``, ``direction``, ``n_experiments``, ``counts`` (by status),
            ``budget`` (``total``, ``spent``, ``left``, ``unit``), ``best`` (see :meth:`best`)
            and ``world_model`` (``type``, ``logged_step``: the fit number of the logged model,
            ``None`` when none is logged).
        """
        from sciwm.summary import campaign_summary

        records = self.records()
        s = campaign_summary(
            records, self.spec.maximize, self.objective, constraints=self.spec.constraints
        )
        budget = self.spec.budget
        return {
            "name": self.name,
            "objective": self.objective,
            "direction": self.spec.objective.direction,
            "parameters": self.parameter_specs(),
            "n_experiments": s["n_experiments"],
            "counts": s["counts"],
            "budget": {
                "total": budget.total,
                "spent": s["spent"],
                "left": budget.total - s["spent"],
                "unit": budget.unit,
            },
            "best": self._best_of(s),
            "world_model": {"type": self.spec.world_model.type, "logged_step": self.logged_step()},
        }

    def parameter_specs(self) -> list[dict[str, Any]]:
        """The search space, one dict per parameter (name, type, bounds or choices)."""
        from sciwm.space import parameter_to_dict

        return [parameter_to_dict(p) for p in self.space.parameters]

    def best(self) -> dict[str, Any] | None:
        """The best completed (and feasible, with ``[[constraints]]``) experiment: ``value``,
        ``parameters``, ``experiment_id``, ``note``.

        ``note`` says when it was measured below the target fidelity; ``None`` when no
        experiment has completed.
        """
        from sciwm.summary import campaign_summary

        s = campaign_summary(
            self.records(), self.spec.maximize, self.objective, constraints=self.spec.constraints
        )
        return self._best_of(s)

    def experiments(self) -> pd.DataFrame:
        """Every experiment as a pandas frame, one row each, in sequence order.

        Columns: ``seq``, ``id``, ``status``, one per parameter, one per outcome, ``cost``,
        the prediction made before dispatch (``pred_<outcome>_mean`` / ``_std`` / ``_lower`` /
        ``_upper``, ``pred_cost_mean`` / ``_upper``) and ``error``.
        """
        import pandas as pd

        rows = []
        for r in self.records():
            row: dict[str, Any] = {"seq": r.experiment.seq, "id": r.experiment.id}
            row["status"] = r.status.value
            row.update({n: r.experiment.parameters.get(n) for n in self.space.names})
            obs = r.observation
            for k in self.spec.outcome_names:
                row[k] = obs.outcomes.get(k) if obs else None
            row["cost"] = obs.cost if obs else None
            for k in self.spec.outcome_names:
                est = r.prediction.outcomes.get(k) if r.prediction else None
                for f in ("mean", "std", "lower", "upper"):
                    row[f"pred_{k}_{f}"] = getattr(est, f) if est else None
            cost = r.prediction.cost if r.prediction else None
            row["pred_cost_mean"] = cost.mean if cost else None
            row["pred_cost_upper"] = cost.upper if cost else None
            row["error"] = obs.error if obs else None
            rows.append(row)
        return pd.DataFrame(rows, columns=self._frame_columns())

    def _frame_columns(self) -> list[str]:
        outcomes = self.spec.outcome_names
        preds = [f"pred_{k}_{f}" for k in outcomes for f in ("mean", "std", "lower", "upper")]
        return [
            *("seq", "id", "status"),
            *self.space.names,
            *outcomes,
            "cost",
            *preds,
            *("pred_cost_mean", "pred_cost_upper", "error"),
        ]

    # -- asking the world model -----------------------------------------------------------
    def validate(self, candidates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Check candidates against the search space.

        Raises:
            ParameterError: Naming the first bad candidate (0-based) and what is wrong.
        """
        if isinstance(candidates, Mapping):
            raise ParameterError(
                "expected a list of candidates (one dict of parameter values each), got a "
                "single dict; wrap it in a list"
            )
        out = []
        for i, c in enumerate(candidates):
            if not isinstance(c, Mapping):
                raise ParameterError(
                    f"candidate {i}: expected a dict of parameter values, got {type(c).__name__}"
                )
            try:
                out.append(self.space.validate(c))
            except ParameterError as exc:
                raise ParameterError(f"candidate {i}: {exc}") from None
        return out

    def predict(
        self, candidates: Sequence[Mapping[str, Any]], level: float | None = None
    ) -> list[Prediction]:
        """The world model's prediction of each candidate's outcomes and cost; runs nothing.

        Args:
            candidates: ``n`` dicts of parameter values.
            level: Interval coverage (default: the campaign's ``scheduler.interval_level``).

        Returns:
            ``n`` predictions (``prediction.extrapolating`` says when a candidate lies outside
            the world model's data).

        Raises:
            ParameterError: If a candidate or ``level`` is not valid.
            NotReadyError: If the campaign's world model cannot predict yet.
        """
        level = self._level(level)
        return self.predict_valid(self.validate(candidates), level)

    def predict_valid(
        self, params: Sequence[Mapping[str, Any]], level: float | None = None
    ) -> list[Prediction]:
        """:meth:`predict` for candidates that :meth:`validate` already returned (the service
        validates once, to name the bad candidate, and answers from the same dicts)."""
        level = self._level(level)
        if not params:
            return []
        model = self.world_model()
        with self._ask:
            return model.predict(params, level=level)

    def rank(
        self, candidates: Sequence[Mapping[str, Any]], level: float | None = None
    ) -> list[Ranked]:
        """Order candidates as the campaign's agent would: by its acquisition, best first.

        The acquisition is the campaign's ``scheduler.acquisition`` built by the scheduler
        (``ei_per_cost``: log expected improvement minus ``cost_exponent`` times the predicted
        log cost; ``gittins``; ``ei``), on the completed experiments as the baseline and the
        running ones as pending. A ``random`` campaign is ranked by ``ei_per_cost``.

        Raises:
            NotRankable: For a campaign with several objectives or outcome constraints.
            ParameterError: If a candidate or ``level`` is not valid.
            NotReadyError: If the campaign's world model cannot predict yet.
        """
        from sciwm.api_rank import acquisition_values, check_rankable

        check_rankable(self.spec)
        level = self._level(level)
        params = self.validate(candidates)
        if not params:
            return []
        model = self.world_model()
        with self._ask:
            predictions = model.predict(params, level=level)
            values, describe = acquisition_values(self, model, params)
        order = sorted(range(len(params)), key=lambda i: -_sortable(values[i]))
        return [
            Ranked(rank, params[i], predictions[i], values[i], describe(i, predictions[i]))
            for rank, i in enumerate(order, start=1)
        ]

    # -- the world model ------------------------------------------------------------------
    def world_model(self) -> WorldModel:
        """The campaign's latest logged world model, loaded once and reloaded when newer.

        See :class:`sciwm.api_models.ModelCache`.

        Raises:
            NotReadyError: If the world model cannot predict yet (too few results).
        """
        return self._models.get()

    def logged_step(self) -> int | None:
        """The fit number of the latest logged world model, or ``None`` when none is logged."""
        return self._models.logged_step()

    # -- internals ----------------------------------------------------------------------
    @property
    def objective(self) -> str:
        """Name of the objective outcome."""
        return self.spec.objective.name

    def _level(self, level: float | None) -> float:
        level = self.spec.scheduler.interval_level if level is None else level
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ParameterError(f"level must lie strictly between 0 and 1, got {level!r}")
        return float(level)

    def _best_of(self, summary: Mapping[str, Any]) -> dict[str, Any] | None:
        from sciwm.summary import fidelity_note

        if summary.get("best_value") is None:
            return None
        params = summary["best_parameters"]
        return {
            "value": summary["best_value"],
            "parameters": params,
            "experiment_id": summary["best_experiment_id"],
            "note": fidelity_note(self.space, params),
        }

    def __repr__(self) -> str:
        return f"Campaign({self.name!r}, tracking_uri={self.tracking_uri!r})"


def _sortable(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


__all__ = ["Campaign", "NotReadyError", "Ranked", "open_campaign"]
