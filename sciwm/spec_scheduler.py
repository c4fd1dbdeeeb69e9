"""The campaign file's loop tables: ``[scheduler]`` (how experiments are proposed and
dispatched) and ``[stopping]`` (when to stop before the budget is spent).

The agent (:mod:`scheduler.agent`), the gate (:mod:`scheduler.gate`) and the loop's stopping
rules (``flows/loop_stop.py``) read them; a setting left out takes the default of the
component that uses it, defined there once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sciwm.prediction import DEFAULT_LEVEL
from sciwm.spec_base import Frozen


class SchedulerSpec(Frozen):
    """``[scheduler]``: how experiments are proposed and dispatched.

    A setting left out (``None``) takes the default of the component that uses it: the
    agent's (:mod:`scheduler.agent`) or the gate's (:mod:`scheduler.gate`), defined there once.
    """

    acquisition: Literal["ei_per_cost", "gittins", "ei", "random"] = "ei_per_cost"
    cost_exponent: float | None = Field(
        default=None,
        ge=0.0,
        le=4.0,
        description="Weight of the predicted log cost in 'ei_per_cost' (1: EI per unit cost; "
        "left out: the agent's DEFAULT_COST_EXPONENT).",
    )
    cost_cooling: bool = Field(
        default=False,
        description="Scale the cost term of 'ei_per_cost' by the fraction of the budget left "
        "(scheduler.acquisition.cooled_exponent): cost-aware at the start, plain expected "
        "improvement as the budget runs out.",
    )
    batch_size: int = Field(default=1, ge=1, le=64)
    parallelism: int = Field(default=1, ge=1, le=1024)
    initial_experiments: int | None = Field(
        default=None,
        ge=0,
        description="Completed experiments of the Sobol initial design before the world model "
        "steers (left out: none for a world model that predicts before any result, else the "
        "agent's DEFAULT_INITIAL_EXPERIMENTS).",
    )
    interval_level: float = Field(default=DEFAULT_LEVEL, gt=0, lt=1)
    poll_interval_s: float = Field(default=0.5, gt=0)
    cost_safety_factor: float | None = Field(
        default=None,
        ge=1.0,
        description="Budget reserved for a running experiment: this times its predicted cost's "
        "upper bound; the experiment is stopped if it costs more (left out: the gate's "
        "DEFAULT_SAFETY_FACTOR).",
    )
    initial_reservation: float | None = Field(
        default=None,
        gt=0,
        description="Budget reserved for an experiment before the world model predicts costs "
        "(left out: the gate's initial_reservation, budget.total / (2 * parallelism)).",
    )
    num_restarts: int | None = Field(
        default=None, ge=1, description="Restarts of the acquisition optimiser."
    )
    raw_samples: int | None = Field(
        default=None, ge=8, description="Raw samples the optimiser's restarts are picked from."
    )
    restart_after: int | None = Field(
        default=None,
        ge=0,
        description="Completed experiments without a real improvement (1% of the observed "
        "range) after which the search restarts from a fresh design; 0: never (left out: 0 "
        "with a world model that predicts before any result, such as a pretrained one, "
        "else the agent's DEFAULT_RESTART_AFTER).",
    )

    joint_batch_above: int | None = Field(
        default=None,
        ge=0,
        description="Completed results from which a batch of several points is optimised "
        "jointly, in one run, instead of point by point; 0: never (left out: the agent's "
        "DEFAULT_JOINT_BATCH_ABOVE).",
    )
    virtual: bool = Field(
        default=False,
        description="Answer a proposal from the world model instead of running it when a real "
        "run is not worth its predicted cost (scheduler.virtual); off by default: on LCDB "
        "replay campaigns it ended campaigns before the dear near-best experiment "
        "(docs/campaign.md).",
    )
    virtual_tolerance: float | None = Field(
        default=None,
        gt=0,
        description="Smallest improvement of the objective that matters, in its units (left "
        "out: 1% of the range of the real results).",
    )
    virtual_min_results: int | None = Field(
        default=None,
        ge=1,
        description="Real results checked against their predictions before the first virtual "
        "answer (left out: scheduler.virtual.DEFAULT_MIN_RESULTS).",
    )
    early_stop: bool = Field(
        default=True,
        description="Cancel a running experiment whose partial result shows, with confidence, "
        "that it cannot matter (scheduler.early_stop); needs a connector with partial results.",
    )

    def agent_settings(self) -> dict[str, Any]:
        """The agent's settings the campaign file sets (the others take the agent's defaults)."""
        keys = (
            "cost_exponent",
            "initial_experiments",
            "num_restarts",
            "raw_samples",
            "restart_after",
            "joint_batch_above",
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    @model_validator(mode="after")
    def _batch_fits(self) -> SchedulerSpec:
        if self.batch_size > self.parallelism:
            raise ValueError(
                f"batch_size ({self.batch_size}) exceeds parallelism ({self.parallelism}); "
                "raise parallelism or lower batch_size"
            )
        return self


class StoppingSpec(Frozen):
    """``[stopping]``: when to stop before the budget is spent."""

    max_experiments: int = Field(default=50, ge=1)
    patience: int = Field(
        default=0, ge=0, description="Stop after this many results without improvement; 0 is off."
    )
    target: float | None = Field(
        default=None, description="Stop once the objective reaches this value."
    )
    min_gain_per_cost: float | None = Field(
        default=None,
        ge=0,
        description="Stop once the best candidate's expected improvement of the objective per "
        "unit of predicted cost (objective units per cost unit) stays below this for "
        "'gain_rounds' proposal rounds in a row; left out: off.",
    )
    gain_rounds: int = Field(
        default=3, ge=1, description="Rounds below 'min_gain_per_cost' that stop the campaign."
    )


__all__ = ["SchedulerSpec", "StoppingSpec"]
