"""What every compared method shares: the names, the settings, one run's result."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The compared methods. ``sciwm``, ``sciwm_ei`` and ``sciwm_cooled`` are campaigns of the
#: product's loop; ``gp_cost_blind``, ``optuna_tpe`` and ``random`` are simple loops written
#: for the benchmark.
METHODS = ("sciwm", "gp_cost_blind", "optuna_tpe", "random", "sciwm_ei", "sciwm_cooled")

#: The product's methods and the ``[scheduler]`` settings their campaign file adds: the
#: shipped defaults, plain expected improvement, and the variant with cost cooling.
PRODUCT_METHODS: dict[str, dict[str, Any]] = {
    "sciwm": {},
    "sciwm_ei": {"acquisition": "ei"},
    "sciwm_cooled": {"cost_cooling": True},
}


@dataclass(frozen=True)
class Settings:
    """Settings of a benchmark run.

    Attributes:
        seeds: Seeds per problem and method (``seed_offset .. seed_offset + seeds - 1``).
        seed_offset: First seed; tune on seeds apart from the reported ones (e.g. 1000).
        quick: Whether the ``--quick`` caps are used.
        scheduler: ``[scheduler]`` settings added to the product's campaign files (for tuning,
            e.g. ``{"acquisition": "gittins"}``); empty: the shipped defaults. The
            ``gp_cost_blind`` loop takes its initial design size and optimiser effort from the
            same settings.
        max_experiments: ``[stopping] max_experiments`` of the product's campaigns and the
            safety stop of ``gp_cost_blind``: large enough that the budget ends a run first.
        random_cap_factor: Random search's cap, as a multiple of the problem's cap.
        workers: Processes running seeds in parallel, one torch thread each (default: one
            per usable CPU core).
        methods: Methods to run (default: all of :data:`METHODS`; ``optuna_tpe`` is left out,
            with a note, where Optuna is not installed).
    """

    seeds: int = 10
    seed_offset: int = 0
    quick: bool = False
    scheduler: Mapping[str, Any] = field(default_factory=dict)
    max_experiments: int = 400
    random_cap_factor: float = 1000.0
    workers: int | None = None
    methods: tuple[str, ...] = METHODS


@dataclass(frozen=True)
class RunResult:
    """One run of one method on one problem with one seed.

    Attributes:
        problem: Problem name.
        method: Method name.
        seed: Seed.
        cap: Budget of the run.
        cost_to_target: Cost spent up to the first result within the target (``inf``: not
            reached within the cap).
        experiments_to_target: Experiments up to it (``None``: not reached).
        experiments: Experiments run.
        spent: Cost spent in all.
        best: Best value found.
        wall_s: Wall time of the run, seconds.
        store_s: Seconds spent in the record store (the product's methods).
        fit_s: Seconds spent fitting the world model (the GP of ``gp_cost_blind``).
        propose_s: Seconds spent choosing experiments (optimising the acquisition).
    """

    problem: str
    method: str
    seed: int
    cap: float
    cost_to_target: float
    experiments_to_target: int | None
    experiments: int
    spent: float
    best: float
    wall_s: float
    store_s: float = 0.0
    fit_s: float = 0.0
    propose_s: float = 0.0


def usable_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
