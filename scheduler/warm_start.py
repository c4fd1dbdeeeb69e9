"""Warm starts: earlier campaigns' results, placed in a new campaign's search space.

``[warm_start] campaigns = ["name", ...]`` names earlier campaigns in the record store. Their
finished experiments become *prior results* of the new campaign's world model
(:meth:`surrogates.gp.GPWorldModel.warm_start`), never its measurements: they are not
counted against the budget, the stopping rules, the initial design or the best result.

Parameters are matched by name:

- a parameter of the old campaign that the new one lacks is dropped (its results are read as
  if it did not matter);
- a parameter of the new campaign that the old one lacks takes the value given in
  ``[warm_start] values = {name = value}`` (what the old campaign ran at); without it the
  campaign cannot be placed, which is an error;
- a result whose values lie outside the new space (a number out of bounds, a category the new
  campaign does not have) is left out, and the count is logged;
- outcomes are matched by name; an outcome the old campaign did not measure gets no prior.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sciwm.errors import ParameterError, SpecError
from sciwm.experiment import Experiment, Observation
from sciwm.space import SearchSpace, Value
from sciwm.store import RecordStore
from sciwm.world_model import WorldModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriorResults:
    """Earlier campaigns' results in the new campaign's space.

    Attributes:
        experiments: The old experiments, their parameters those of the new space.
        observations: Their observations, aligned.
        left_out: Per old campaign, results that could not be placed (outside the new space).
    """

    experiments: list[Experiment] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)


def place(
    space: SearchSpace,
    campaign: str,
    old_space: SearchSpace,
    results: Sequence[tuple[Experiment, Observation]],
    values: Mapping[str, Value] | None = None,
) -> tuple[list[tuple[Experiment, Observation]], int]:
    """Place one old campaign's results in ``space``.

    Args:
        space: The new campaign's space.
        campaign: The old campaign's name (for messages).
        old_space: Its space.
        results: Its finished experiments and their observations.
        values: Values of new parameters the old campaign did not have.

    Returns:
        ``(placed, left_out)``: the results with parameters of ``space``, and how many lie
        outside it.

    Raises:
        SpecError: If the campaigns share no parameter, or a new parameter has no value.
    """
    values = dict(values or {})
    new, old = set(space.names), set(old_space.names)
    if not new & old:
        raise SpecError(
            f"warm_start campaign {campaign!r} shares no parameter with this campaign (it has "
            f"{sorted(old)}, this one {sorted(new)}); parameters are matched by name"
        )
    missing = sorted(n for n in new - old if n not in values)
    if missing:
        raise SpecError(
            f"warm_start campaign {campaign!r} has no parameter(s) {missing}; give the values "
            f"it ran at in [warm_start] values = {{{missing[0]} = ...}}, or leave it out"
        )
    placed: list[tuple[Experiment, Observation]] = []
    left_out = 0
    for exp, obs in results:
        params = {n: exp.parameters[n] if n in old else values[n] for n in space.names}
        try:
            params = space.validate(params)
        except ParameterError:
            left_out += 1
            continue
        placed.append((Experiment(exp.id, campaign, exp.seq, params, exp.max_cost), obs))
    return placed, left_out


def prior_results(
    space: SearchSpace,
    campaigns: Mapping[str, tuple[SearchSpace, Sequence[tuple[Experiment, Observation]]]],
    values: Mapping[str, Value] | None = None,
) -> PriorResults:
    """Every old campaign's results placed in ``space`` (see :func:`place`).

    Args:
        space: The new campaign's space.
        campaigns: By name, each old campaign's space and finished results.
        values: Values of new parameters the old campaigns did not have.
    """
    out = PriorResults()
    for name, (old_space, results) in campaigns.items():
        placed, left = place(space, name, old_space, results, values)
        if left:
            logger.warning(
                "warm start: %d of %d results of campaign %r lie outside this campaign's "
                "space and are left out",
                left,
                len(results),
                name,
            )
        out.left_out[name] = left
        out.experiments.extend(e for e, _ in placed)
        out.observations.extend(o for _, o in placed)
        logger.info("warm start: %d results of campaign %r as prior", len(placed), name)
    return out


def read_prior(
    store: RecordStore,
    space: SearchSpace,
    campaigns: Sequence[str],
    values: Mapping[str, Value] | None = None,
) -> PriorResults:
    """Read earlier campaigns from the store and place their results in ``space``.

    Raises:
        StoreError: If a campaign is not in the store (the message lists those that are).
        SpecError: As :func:`place`.
    """
    found = {}
    for name in campaigns:
        old = store.campaign_spec(name)
        pairs = [(r.experiment, r.observation) for r in store.records(name) if r.observation]
        found[name] = (old.space(), pairs)
    return prior_results(space, found, values)


def apply_prior(model: WorldModel, prior: PriorResults, model_type: str) -> None:
    """Hand the prior results to ``model`` (its ``warm_start`` method).

    Raises:
        SpecError: If the world model cannot start from earlier campaigns.
    """
    if not prior.experiments:
        return
    start = getattr(model, "warm_start", None)
    if start is None:
        raise SpecError(
            f"the {model_type!r} world model cannot start from earlier campaigns; use "
            '[world_model] type = "gp" or remove [warm_start]'
        )
    start(prior.experiments, prior.observations)
