"""The acquisition values behind :meth:`sciwm.api.Campaign.rank`, from the scheduler's code.

The acquisition is built exactly as the campaign's agent builds it
(:func:`scheduler.acquisition.build_acquisition`, with the campaign's ``acquisition``,
``cost_exponent`` (cooled by the budget left with ``cost_cooling``) and seed), on the
completed experiments projected to the target fidelity as the baseline and the running
experiments as pending points; each candidate is then one ``1 x 1 x d`` batch of it. Nothing
here is a second acquisition function.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from sciwm.errors import ParameterError
from sciwm.experiment import Status
from sciwm.prediction import Prediction

if TYPE_CHECKING:
    from sciwm.api import Campaign
    from sciwm.spec import CampaignSpec
    from sciwm.world_model import WorldModel

#: Candidates evaluated in one call of the acquisition.
CHUNK = 256


class NotRankable(ParameterError):
    """The campaign's agent cannot be asked to rank candidates (see the message)."""


def check_rankable(spec: CampaignSpec) -> None:
    """Raise :class:`NotRankable` for a campaign whose ranking is not supported.

    Raises:
        NotRankable: For several objectives or outcome constraints.
    """
    if spec.multi_objective or spec.constraints:
        raise NotRankable(
            f"campaign {spec.name!r} has several objectives or outcome constraints; ranking "
            "supports a single objective without constraints for now. Ask predict for each "
            "candidate's outcomes and cost instead"
        )


def acquisition_values(
    campaign: Campaign, model: WorldModel, params: Sequence[Mapping[str, Any]]
) -> tuple[list[float], Callable[[int, Prediction], str]]:
    """The campaign's acquisition at each candidate, and a function explaining each value.

    Args:
        campaign: The campaign (its spec and records).
        model: Its fitted world model.
        params: ``n`` validated candidates.

    Returns:
        ``(values, why)``: ``n`` acquisition values (higher is better) and ``why(i,
        prediction)``, one sentence about candidate ``i``.
    """
    from scheduler.acquisition import build_acquisition, cooled_exponent
    from scheduler.agent import BASELINE_MAX, DEFAULT_COST_EXPONENT, DEFAULT_INITIAL_EXPERIMENTS
    from scheduler.fidelity import project_to_target

    spec, space = campaign.spec, campaign.space
    check_rankable(spec)
    sched = spec.scheduler
    kind = sched.acquisition if sched.acquisition != "random" else "ei_per_cost"
    exponent = DEFAULT_COST_EXPONENT if sched.cost_exponent is None else sched.cost_exponent
    records = campaign.records()
    if sched.cost_cooling:  # as the loop: the cost term weighs the fraction of budget left
        spent = sum((r.observation.cost or 0.0) for r in records if r.observation is not None)
        exponent = cooled_exponent(exponent, 1.0 - spent / spec.budget.total)
    obj = spec.objective.name
    done = [
        (r.experiment.parameters, float(r.observation.outcomes[obj]))
        for r in records
        if r.observation is not None
        and r.observation.status is Status.COMPLETED
        and obj in r.observation.outcomes
        and math.isfinite(float(r.observation.outcomes[obj]))
    ]
    if len(done) > BASELINE_MAX:  # as the agent: the best BASELINE_MAX are the baseline
        done = sorted(done, key=lambda d: -d[1] if spec.maximize else d[1])[:BASELINE_MAX]
    completed = [p for p, _ in done]
    if completed:
        X_base = space.encode(completed)
    else:  # as the agent: improve on what the model predicts for the design it replaces
        engine = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=spec.campaign.seed)
        X_base = space.round_trip(engine.draw(DEFAULT_INITIAL_EXPERIMENTS, dtype=torch.double))
    X_baseline = project_to_target(X_base, space.fidelity_indices)
    running = [r.experiment.parameters for r in records if not r.status.finished]
    X_pending = space.encode(running) if running else None
    X = space.encode(list(params))
    with torch.no_grad(), warnings.catch_warnings(), torch.random.fork_rng():
        warnings.simplefilter("ignore")
        torch.manual_seed(spec.campaign.seed)
        acqf = build_acquisition(
            model,
            obj,
            spec.maximize,
            X_baseline,
            X_pending,
            kind=kind,
            cost_exponent=exponent,
            seed=spec.campaign.seed,
        )
        chunks = [X[i : i + CHUNK].unsqueeze(1) for i in range(0, len(X), CHUNK)]
        log_ei = log_cost = None
        if kind == "ei_per_cost":  # its two terms, each computed once: value = their difference
            log_ei = torch.cat([acqf.log_ei(c) for c in chunks])
            log_cost = torch.cat([acqf.log_expected_cost(c).reshape(-1) for c in chunks])
            values = log_ei - exponent * log_cost
        else:
            values = torch.cat([acqf(c) for c in chunks])
    vals = [float(v) for v in values.reshape(-1)]
    unit = spec.budget.unit
    note = (
        " (the campaign proposes at random; ranked by ei_per_cost)"
        if kind != sched.acquisition
        else ""
    )

    def why(i: int, pred: Prediction) -> str:
        cost = f"predicted cost {pred.cost.mean:.4g} {unit}"
        if kind == "ei_per_cost":
            assert log_ei is not None and log_cost is not None
            return (
                f"ei_per_cost{note}: log expected improvement of {obj} "
                f"{float(log_ei[i]):.4g} minus {exponent:g} x log expected cost "
                f"{float(log_cost[i]):.4g} = {vals[i]:.4g}; {cost}"
            )
        if kind == "gittins":
            lam = getattr(acqf, "lam", float("nan"))
            return f"gittins: Pandora's-box index {vals[i]:.4g} at cost weight {lam:.3g}; {cost}"
        return f"ei (cost-blind, as the campaign's agent): log EI {vals[i]:.4g}; {cost}"

    return vals, why
