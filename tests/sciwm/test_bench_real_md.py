"""The MD campaign of ``sciwm bench campaign``: its campaign files, truth and settling rule."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from sciwm.bench.campaign.md_campaign import (
    MD_METHODS,
    TOLERANCE,
    md_campaign_file,
    md_rows,
    settle,
)
from sciwm.spec import parse_spec


def test_each_method_is_the_shipped_file_with_one_change():
    specs = {m: parse_spec(tomllib.loads(md_campaign_file(m, 2, 40.0)), m) for m in MD_METHODS}
    assert specs["sciwm"].world_model.type.endswith("MDEmulatorWorldModel")
    assert specs["sciwm_no_world_model"].world_model.type == "gp"
    assert specs["random"].scheduler.acquisition == "random"
    for spec in specs.values():
        assert spec.budget.total == 40.0 and spec.campaign.seed == 2
        assert spec.space()["length_ps"].fidelity


#: A reference curve rising linearly from 0.08 at 300 K to 0.12 at 600 K (maximum 0.12).
COEF = np.array([0.0, 0.04 / 300, 0.08 - 300 * 0.04 / 300])


def _trace(*rows: tuple[float, float, float, float]) -> list[dict]:
    return [{"temperature": t, "length_ps": n, "value": v, "cost": c} for t, n, v, c in rows]


def test_the_answer_counts_once_it_stays_within_tolerance():
    trace = _trace(
        (590.0, 100.0, 0.10, 2.0),  # right answer first ...
        (310.0, 20.0, 0.30, 1.0),  # ... then a lucky short run at 310 K takes over (wrong)
        (580.0, 500.0, 0.35, 5.0),  # ... and a long run at 580 K settles it
    )
    out = settle(trace, COEF, 0.12, equilibrate_ps=5.0)
    assert out["answer_K"] == 580.0
    assert out["sim_ps_to_answer"] == pytest.approx(100 + 20 + 500 + 3 * 5)
    assert out["wall_s_to_answer"] == pytest.approx(8.0)
    wrong = settle(_trace((310.0, 20.0, 0.3, 1.0)), COEF, 0.12, equilibrate_ps=5.0)
    assert math.isinf(wrong["sim_ps_to_answer"])
    assert 0.12 - TOLERANCE > float(np.polyval(COEF, 310.0))


def test_rows_give_medians_and_reached_fraction():
    runs = []
    for seed, (sim, wall) in enumerate([(100.0, 2.0), (300.0, 6.0), (math.inf, math.inf)]):
        runs.append(
            {
                "method": "sciwm",
                "seed": seed,
                "sim_ps_to_answer": sim,
                "wall_s_to_answer": wall,
                "trace": [{}],
                "wall_s": 10.0,
                "real_wall_s": 8.0,
                "fit_s": 1.0,
                "propose_s": 0.5,
                "answer_K": 500.0,
            }
        )
    rows = {r["metric"]: r for r in md_rows(runs) if r["metric"] != "run"}
    assert rows["sim_ps_to_answer"]["value"] == 300.0
    assert rows["reached_fraction"]["value"] == pytest.approx(2 / 3)
    assert rows["loop_overhead_s"]["value"] == pytest.approx(2.0)
