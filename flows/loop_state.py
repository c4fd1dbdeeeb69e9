"""What the campaign loop knows while it runs, and what it reports when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sciwm.experiment import Status
from sciwm.pareto import feasible
from sciwm.spec import CampaignSpec
from sciwm.store import Record
from sciwm.summary import fidelity_note, infeasible_note, pareto_summary


@dataclass
class LoopState:
    """What the loop knows, rebuilt from the store at start.

    Attributes:
        finished: Records of finished experiments, in order of sequence number.
        running: Records of submitted experiments not yet finished, by experiment id.
        unsubmitted: Records proposed but not yet accepted by the backend (it was
            unavailable), by experiment id; submitted again before anything new.
        next_seq: Sequence number of the next proposal.
        refit_needed: Whether results arrived since the last fit.
        fits: Number of world-model fits so far (the artifact step).
        fitted_on: Finished experiments the world model was last fitted on.
        fit_s: Seconds the last fit took.
        logged_fit: The fit last logged to the store (its ``fits`` count; 0: none yet).
        logged_on: Finished experiments that logged fit was fitted on (``None``: none yet).
        stop_reason: Why the loop stopped proposing (``None`` while it goes on).
        gains: Per proposal round, the best candidate's expected gain per unit of cost
            (``None`` without a fitted world model); kept in memory, so a resumed campaign
            counts its rounds afresh.
        answered: Parameters of the proposals answered virtually (from the store at start).
        virtual_saved: Predicted cost those answers saved.
        virtual_streak: Proposals answered virtually since the last real dispatch.
        virtual_round: Proposals answered virtually in the current round.
        stopped_early: Experiments cancelled by early stopping, by id: the reason, the
            predicted cost saved and the partial curve (``{"waiting": True}`` where the
            connector cannot cancel).
        budget_bound: Whether the dispatch gate held back every proposal of a round for
            cost while nothing ran: from then on, while nothing runs, the agent proposes
            only what the budget left can pay for (see :mod:`flows.loop_stop`).
    """

    finished: list[Record] = field(default_factory=list)
    running: dict[str, Record] = field(default_factory=dict)
    unsubmitted: dict[str, Record] = field(default_factory=dict)
    next_seq: int = 0
    refit_needed: bool = True
    fits: int = 0
    fitted_on: int = 0
    fit_s: float = 0.0
    logged_fit: int = 0
    logged_on: int | None = None
    stop_reason: str | None = None

    def in_flight(self) -> list[Record]:
        """Experiments started but not finished: running, or waiting to be accepted."""
        return [*self.running.values(), *self.unsubmitted.values()]

    gains: list[float | None] = field(default_factory=list)
    answered: list[dict] = field(default_factory=list)
    virtual_saved: float = 0.0
    virtual_streak: int = 0
    virtual_round: int = 0
    stopped_early: dict[str, dict] = field(default_factory=dict)
    budget_bound: bool = False


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


def summarise(
    spec: CampaignSpec, state: LoopState, n_started: int, spent: float, tracking_uri: str
) -> CampaignResult:
    """The :class:`CampaignResult` of a campaign whose loop is in ``state``."""
    completed = [
        r for r in state.finished if r.observation and r.observation.status is Status.COMPLETED
    ]
    name = spec.objective.name
    cons = spec.constraints
    ok = [r for r in completed if feasible(r.observation.outcomes, cons)]  # type: ignore[union-attr]
    best = None
    front = None
    if spec.multi_objective:
        front = pareto_summary(state.finished, spec)
    elif ok:
        pick = max if spec.maximize else min
        best = pick(ok, key=lambda r: r.observation.outcomes[name])  # type: ignore[union-attr]
    return CampaignResult(
        name=spec.name,
        stop_reason=state.stop_reason or "finished",
        n_experiments=n_started,
        n_completed=len(completed),
        n_failed=len(state.finished) - len(completed),
        spent=spent,
        budget=spec.budget.total,
        best_value=None if best is None else best.observation.outcomes[name],  # type: ignore[union-attr]
        best_parameters=None if best is None else dict(best.experiment.parameters),
        tracking_uri=tracking_uri,
        best_note=None if best is None else fidelity_note(spec.space(), best.experiment.parameters),
        pareto_front=None if front is None else front["front"],
        hypervolume=None if front is None else front["hypervolume"],
        infeasible_note=infeasible_note(len(completed), len(ok), cons),
    )
