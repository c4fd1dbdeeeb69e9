"""The calibration check of the world-model conformance suite.

A world model is fitted on data drawn from a *known* distribution (a :class:`CalibrationCase`
that each world model's tests supply in their own domain: a smooth function with Gaussian
noise of known std for a GP, real OpenMM runs for the MD emulator), then asked about fresh
held-out experiments; each held-out experiment carries one fresh draw of its outcomes and
cost from that distribution. The 90 % intervals of ``predict`` must hold 85–95 % of the
draws, for every outcome and for cost, and no interval may leave its outcome's declared range
(costs: positive).

With ``N`` held-out draws the coverage of a calibrated model has standard error
``sqrt(0.09 / N)``: 0.011 at ``N = 720``, so the band 0.85–0.95 is more than 4 standard
errors wide on each side of 0.90, while a model whose intervals are half as wide as they
should be covers about 0.59 and fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import SearchSpace
from sciwm.testing.world_model_data import make_calibration_data
from sciwm.world_model import WorldModel

#: Level of the checked intervals and the band their coverage must fall in.
LEVEL = 0.9
BAND = (0.85, 0.95)

ModelFactory = Callable[[SearchSpace, list[str]], WorldModel]
DataGenerator = Callable[[int, int], tuple[list[Experiment], list[Observation]]]


@dataclass(frozen=True)
class CalibrationCase:
    """A known distribution to check a world model's intervals against.

    Attributes:
        generate: ``(n, seed) -> (experiments, observations)``: ``n`` experiments and one
            draw of their outcomes and cost from the known distribution (the same
            distribution for every seed; different seeds give independent draws).
        ranges: Declared range ``(low, high)`` of each outcome; an outcome not named is
            unbounded. Every interval must lie inside it.
        n_train: Experiments each fitted model is trained on (0: ``fit([], [])``, for a
            model that answers before any real result).
        n_test: Held-out experiments per training seed.
        seeds: Training seeds: one fitted model each; the held-out draws of seed ``s`` use
            seed ``10_000 + s``. Coverage is pooled over the seeds.
        cost: Whether the cost intervals are checked (the case's costs then come from a
            known distribution too).
        space: The space the case lives in (``None``: the suite's ``space`` fixture).
        outcomes: The outcomes the model is built for and checked on (``None``: the
            suite's ``outcome_names``).
    """

    generate: DataGenerator
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    n_train: int = 24
    n_test: int = 240
    seeds: tuple[int, ...] = (100, 101, 102)
    cost: bool = True
    space: SearchSpace | None = None
    outcomes: tuple[str, ...] | list[str] | None = None


@dataclass(frozen=True)
class CalibrationReport:
    """What the check measured.

    Attributes:
        coverage: Fraction of held-out draws inside their interval, per outcome and for
            ``"cost"``.
        n: Draws behind each coverage.
        out_of_range: Messages for intervals that left their outcome's declared range.
        level: The intervals' level.
    """

    coverage: dict[str, float]
    n: dict[str, int]
    out_of_range: list[str]
    level: float = LEVEL

    def failures(self, band: tuple[float, float] = BAND) -> list[str]:
        """Why the check fails: coverages outside ``band`` and range violations."""
        lo, hi = band
        bad = [
            f"{name}: {self.level:.0%} intervals cover {c:.3f} of {self.n[name]} held-out "
            f"draws, not {lo}-{hi}"
            for name, c in self.coverage.items()
            if not lo <= c <= hi
        ]
        return bad + self.out_of_range[:5]


def measure_calibration(
    factory: ModelFactory,
    space: SearchSpace,
    outcomes: list[str],
    case: CalibrationCase,
    level: float = LEVEL,
) -> CalibrationReport:
    """Fit one model per seed of ``case`` and measure its intervals on fresh draws.

    Args:
        factory: Builds a fresh unfitted model: ``(space, outcomes) -> WorldModel``.
        space: The search space of the case.
        outcomes: The outcome names the model is built for.
        case: The known distribution.
        level: The interval level checked.

    Returns:
        Pooled coverage per outcome and for cost, and any range violations.
    """
    hits: dict[str, int] = {name: 0 for name in outcomes}
    counts: dict[str, int] = {name: 0 for name in outcomes}
    if case.cost:
        hits["cost"] = counts["cost"] = 0
    out_of_range: list[str] = []
    for seed in case.seeds:
        model = factory(space, list(outcomes))
        model.fit(*(case.generate(case.n_train, seed) if case.n_train else ([], [])))
        experiments, observations = case.generate(case.n_test, 10_000 + seed)
        predictions = model.predict([e.parameters for e in experiments], level=level)
        for e, o, p in zip(experiments, observations, predictions, strict=True):
            for name in outcomes:
                est = p.outcomes[name]
                low, high = case.ranges.get(name, (-math.inf, math.inf))
                if not low <= est.lower <= est.upper <= high:
                    out_of_range.append(
                        f"{name} at {dict(e.parameters)}: interval [{est.lower:.4g}, "
                        f"{est.upper:.4g}] leaves the declared range [{low}, {high}]"
                    )
                value = o.outcomes.get(name) if o.status is Status.COMPLETED else None
                if value is not None and math.isfinite(value):
                    hits[name] += est.contains(value)
                    counts[name] += 1
            if case.cost and o.cost is not None:
                if not 0.0 < p.cost.lower <= p.cost.upper < math.inf:
                    out_of_range.append(
                        f"cost at {dict(e.parameters)}: interval [{p.cost.lower:.4g}, "
                        f"{p.cost.upper:.4g}] is not positive and finite"
                    )
                hits["cost"] += p.cost.contains(o.cost)
                counts["cost"] += 1
    coverage = {k: hits[k] / counts[k] if counts[k] else math.nan for k in hits}
    return CalibrationReport(coverage, counts, out_of_range, level)


def default_calibration_case(space: SearchSpace, outcomes: list[str]) -> CalibrationCase:
    """The suite's default known distribution on ``space``:
    :func:`~sciwm.testing.world_model_data.make_calibration_data` (a slowly varying function
    plus Gaussian noise of std 0.1 per outcome, log-normal cost; unbounded outcomes), 60
    training points, 3 seeds of 240 held-out draws."""
    names = list(outcomes)
    return CalibrationCase(
        lambda n, seed: make_calibration_data(space, names, n, seed),
        n_train=60,
        seeds=(100, 101, 102),
    )


def check_calibration(
    factory: ModelFactory, space: SearchSpace, outcomes: list[str], case: CalibrationCase
) -> CalibrationReport:
    """Measure calibration on ``case`` and fail (``AssertionError``) unless every coverage
    lies in :data:`~sciwm.testing.world_model_calibration.BAND` and every interval in its
    declared range."""
    space = case.space or space
    outcomes = list(case.outcomes or outcomes)
    report = measure_calibration(factory, space, outcomes, case)
    failures = report.failures(BAND)
    assert not failures, "miscalibrated:\n" + "\n".join(failures)
    return report


__all__ = [
    "BAND",
    "LEVEL",
    "CalibrationCase",
    "CalibrationReport",
    "DataGenerator",
    "ModelFactory",
    "check_calibration",
    "default_calibration_case",
    "measure_calibration",
]
