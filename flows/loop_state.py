"""What the campaign loop knows while it runs, and what it reports when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sciwm.store import Record


@dataclass
class LoopState:
    """What the loop knows, rebuilt from the store at start.

    Attributes:
        finished: Records of finished experiments, in order of sequence number.
        running: Records of submitted experiments not yet finished, by experiment id.
        next_seq: Sequence number of the next proposal.
        refit_needed: Whether results arrived since the last fit.
        fits: Number of world-model fits so far (the artifact step).
        stop_reason: Why the loop stopped proposing (``None`` while it goes on).
        gains: Per proposal round, the best candidate's expected gain per unit of cost
            (``None`` without a fitted world model); kept in memory, so a resumed campaign
            counts its rounds afresh.
    """

    finished: list[Record] = field(default_factory=list)
    running: dict[str, Record] = field(default_factory=dict)
    next_seq: int = 0
    refit_needed: bool = True
    fits: int = 0
    stop_reason: str | None = None
    gains: list[float | None] = field(default_factory=list)


@dataclass(frozen=True)
class CampaignResult:
    """Summary of a campaign after :meth:`CampaignLoop.run`.

    Attributes:
        name: Campaign name.
        stop_reason: Why it stopped.
        n_experiments: Real experiments recorded (all statuses).
        n_completed: Completed ones.
        n_failed: Failed or cancelled ones.
        spent: Real cost spent.
        budget: Total budget.
        best_value: Best objective value (``None`` if nothing completed).
        best_parameters: Parameters of the best experiment.
        tracking_uri: Where the records are.
        best_note: What to know about the best value, e.g. that it was measured below the
            target fidelity.
        pareto_front: With several objectives, the Pareto front of the completed feasible
            results (``experiment_id``, ``parameters``, ``outcomes`` each); ``best_value``
            is then ``None``.
        hypervolume: The front's hypervolume (several objectives).
        infeasible_note: Set when no completed result satisfies the ``[[constraints]]``.
    """

    name: str
    stop_reason: str
    n_experiments: int
    n_completed: int
    n_failed: int
    spent: float
    budget: float
    best_value: float | None
    best_parameters: dict | None
    tracking_uri: str
    best_note: str | None = None
    pareto_front: list[dict] | None = None
    hypervolume: float | None = None
    infeasible_note: str | None = None


ProgressFn = Callable[[LoopState, float], None]
