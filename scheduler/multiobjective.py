"""Several objectives: a Pareto front from a botorch multi-objective acquisition.

The world model's per-outcome posteriors are joined into one botorch ``ModelList`` (one
output per objective) and the agent maximises

- ``qLogNoisyExpectedHypervolumeImprovement`` (qLogNEHVI, Daulton et al. 2021; Ament et al.
  2023) with up to :data:`EHVI_MAX_OBJECTIVES` objectives, or
- ``qLogNParEGO`` (a random Chebyshev scalarisation per proposal) with more, where the box
  decomposition behind the hypervolume grows too fast with the number of objectives.

Minimised objectives are negated (``WeightedMCMultiOutputObjective`` with weights +-1). The
reference point is the campaign file's (``ref`` of every objective) or inferred from the
results at each proposal (:func:`sciwm.pareto.reference_point`). While no result beats the
campaign file's point in every objective (its hypervolume is 0, and so is every improvement
a single proposal is likely to make), the agent steers by the inferred one instead, so its
proposals still push the observed front outwards. A cost-aware acquisition
divides the improvement by the predicted cost exactly as with one objective
(:class:`scheduler.acquisition.LogEIPerCost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import WeightedMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.models.model import ModelList
from botorch.sampling import SobolQMCNormalSampler
from botorch.sampling.list_sampler import ListSampler
from torch import Tensor

from sciwm.errors import SpecError
from sciwm.pareto import hypervolume, reference_point
from sciwm.world_model import WorldModel

#: Most objectives for qLogNEHVI; with more the agent uses qLogNParEGO.
EHVI_MAX_OBJECTIVES = 3

#: Monte-Carlo samples of the qLogNEHVI / qLogNParEGO estimate.
MO_MC_SAMPLES = 64


@dataclass(frozen=True)
class Objectives:
    """The objectives of a campaign: names, directions and reference-point coordinates.

    Attributes:
        names: Outcome names, at least one, unique.
        maximize: Direction of each.
        ref: Reference-point coordinate of each (natural sign), ``None`` where inferred.

    Raises:
        SpecError: If the fields do not align or a name repeats.
    """

    names: tuple[str, ...]
    maximize: tuple[bool, ...]
    ref: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.ref:
            object.__setattr__(self, "ref", (None,) * len(self.names))
        if not self.names or not (len(self.names) == len(self.maximize) == len(self.ref)):
            raise SpecError(
                "objectives need a name, a direction and a reference coordinate each "
                f"(got {self.names!r}, {self.maximize!r}, {self.ref!r})"
            )
        if len(set(self.names)) != len(self.names):
            raise SpecError(f"objective names must be unique, got {list(self.names)}")

    @property
    def multi(self) -> bool:
        """Whether there are several objectives."""
        return len(self.names) > 1

    @property
    def weights(self) -> Tensor:
        """``m`` weights +1 (maximised) / -1 (minimised)."""
        return torch.tensor([1.0 if m else -1.0 for m in self.maximize], dtype=torch.double)


def build_mo_acquisition(
    model: WorldModel,
    objectives: Objectives,
    X_baseline: Tensor,
    Y_baseline: Tensor | None,
    X_pending: Tensor | None,
    seed: int = 0,
) -> AcquisitionFunction:
    """The log-scale multi-objective acquisition on a fitted world model.

    Args:
        model: A fitted world model that models every objective.
        objectives: Several objectives.
        X_baseline: A ``n x d`` tensor of observed (or, before any result, design) points.
        Y_baseline: A ``n x m`` tensor of their observed objective values (natural sign), for
            inferring the reference point; ``None``: inferred from the model's posterior means
            at ``X_baseline``.
        X_pending: A ``k x d`` tensor of points running or chosen for this batch, or ``None``.
        seed: Seed of the quasi-Monte-Carlo base samples (and of ParEGO's weights, through the
            caller's torch seed).

    Returns:
        An acquisition taking ``b x q x d`` tensors to ``b`` log values.
    """
    joint = ModelList(*[model.outcome_model(n) for n in objectives.names])
    objective = WeightedMCMultiOutputObjective(weights=objectives.weights)
    sampler = ListSampler(  # one per objective: the world model's posteriors are separate
        *[
            SobolQMCNormalSampler(sample_shape=torch.Size([MO_MC_SAMPLES]), seed=seed + i)
            for i in range(len(objectives.names))
        ]
    )
    if len(objectives.names) > EHVI_MAX_OBJECTIVES:
        return qLogNParEGO(
            joint,
            X_baseline=X_baseline,
            sampler=sampler,
            objective=objective,
            X_pending=X_pending,
            prune_baseline=True,
            cache_root=False,
        )
    if Y_baseline is None or Y_baseline.shape[0] == 0:
        with torch.no_grad():
            Y_baseline = joint.posterior(X_baseline.unsqueeze(-2)).mean.squeeze(-2)
    ref = reference_point(Y_baseline, objectives.maximize, objectives.ref)
    assert ref is not None  # Y_baseline has rows
    if hypervolume(Y_baseline, objectives.maximize, ref) <= 0.0:
        # no result beats the campaign file's reference point in every objective yet: steer
        # by one inferred from the results, so that proposals still push the front outwards
        ref = reference_point(Y_baseline, objectives.maximize)
        assert ref is not None
    return qLogNoisyExpectedHypervolumeImprovement(
        joint,
        ref_point=(torch.tensor(ref, dtype=torch.double) * objectives.weights).tolist(),
        X_baseline=X_baseline,
        sampler=sampler,
        objective=objective,
        X_pending=X_pending,
        prune_baseline=True,
        cache_root=False,  # the contract's posteriors are not GPyTorch models
    )


def objectives_of(
    names: Sequence[str], maximize: Sequence[bool], ref: Sequence[float | None]
) -> Objectives:
    """:class:`Objectives` from aligned sequences (e.g. a campaign file's ``[[objectives]]``)."""
    return Objectives(tuple(names), tuple(bool(m) for m in maximize), tuple(ref))
