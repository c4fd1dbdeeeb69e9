"""The scale and warm-start suites of ``sciwm bench campaign``: cases, rows, targets."""

from __future__ import annotations

import math
import tomllib

import numpy as np

from sciwm.bench.campaign.scale import campaign_text, cases, rows_of
from sciwm.bench.campaign.warm_start import meta_distance, ratio
from sciwm.bench.campaign.warm_start import rows_of as warm_rows
from sciwm.spec import parse_spec


def test_scale_campaign_file_is_the_products_with_batches_of_8():
    spec = parse_spec(tomllib.loads(campaign_text(0, {"scalable_above": 0})))
    assert spec.scheduler.batch_size == 8 and spec.world_model.settings == {"scalable_above": 0}
    assert spec.scheduler.restart_after == 0
    assert spec.stopping.target is None
    assert parse_spec(tomllib.loads(campaign_text(0, {}))).world_model.settings == {}


def test_scale_cases_skip_the_exact_gp_past_its_limit():
    got = cases(quick=False, seeds=1)
    assert ("sciwm", 10000, 0) in got and ("sciwm_exact", 1000, 0) in got
    assert not any(m == "sciwm_exact" and n > 1000 for m, n, _ in got)
    assert [n for _, n, _ in cases(quick=True, seeds=1)] == [1000, 1000, 100, 100]


def test_scale_rows_medians_and_targets():
    def case(method, n, seed, latency, regret):
        return {
            "method": method, "n": n, "seed": seed, "proposal_latency_s": latency,
            "proposal_cpu_s": latency, "fit_s": 1.0, "fit_cpu_s": 1.0,
            "peak_memory_mb": 400.0, "batch_regret": regret, "history_regret": 1.0,
            "subset": n > 500,
        }  # fmt: skip

    rows = rows_of(
        [
            case("sciwm", 1000, 0, 1.0, 0.1),
            case("sciwm", 1000, 1, 3.0, 0.3),
            case("sciwm_exact", 1000, 0, 9.0, 0.1),
            case("sciwm_exact", 1000, 1, 9.0, 0.1),
        ]
    )
    med = {
        (r["method"], r["metric"]): r["value"]
        for r in rows
        if "seeds" in r and r["n_observations"] == 1000
    }
    assert med[("sciwm", "proposal_latency_s")] == 2.0
    targets = {r["criterion"]: r["value"] for r in rows if r["metric"] == "target_met"}
    assert targets == {"latency_at_1000_le_2s": 1, "regret_at_1000_vs_exact": 0}


def test_warm_start_ratio_bounds():
    assert ratio(10.0, 5.0, 100.0) == (2.0, "exact")
    assert ratio(math.inf, 5.0, 100.0) == (20.0, "lower")
    assert ratio(10.0, math.inf, 100.0) == (0.1, "upper")
    value, bound = ratio(math.inf, math.inf, 100.0)
    assert math.isnan(value) and bound == "none"


def test_warm_start_rows_and_targets():
    def r(pair, cold, warm):
        return {
            "target": "lcdb:1", "source": "lcdb:2", "source_dataset": "b", "pair": pair,
            "seed": 0, "cap": 100.0, "cold_cost": cold, "warm_cost": warm,
        }  # fmt: skip

    rows = warm_rows([r("related", 30.0, 10.0), r("related", 20.0, 20.0), r("unrelated", 10, 12)])
    med = {x["pair"]: x["value"] for x in rows if x["metric"] == "warm_start_ratio_median"}
    assert med["related"] == 2.0 and med["unrelated"] == 10 / 12
    met = {x["criterion"]: x["value"] for x in rows if x["metric"] == "target_met"}
    assert met == {"median_ratio_related_ge_2": 1, "median_ratio_unrelated_ge_0.909": 0}


def test_meta_distance_is_symmetric_and_nearest_is_the_similar_one():
    base = {
        "NumberOfInstances": 1000.0, "NumberOfFeatures": 10.0, "NumberOfClasses": 2.0,
        "MajorityClassPercentage": 50.0, "MinorityClassPercentage": 50.0,
        "PercentageOfNumericFeatures": 100.0, "PercentageOfBinaryFeatures": 0.0,
        "PercentageOfMissingValues": 0.0,
    }  # fmt: skip
    metas = {
        "a": base,
        "b": {**base, "NumberOfInstances": 1100.0},
        "c": {**base, "NumberOfInstances": 1e6, "NumberOfClasses": 20.0},
    }
    names, D = meta_distance(metas)
    assert names == ["a", "b", "c"]
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 0)
    assert D[0, 1] < D[0, 2]
