"""The MD benchmark measures the shipped campaign's world model through its public methods."""

from __future__ import annotations

import pytest

pytest.importorskip("openmm")

from sciwm.bench.md_world_model import property_head, world_models  # noqa: E402
from sciwm.md.observables import BASINS  # noqa: E402
from surrogates.md.world_model import DEFAULT_CHECKPOINT  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no emulator checkpoint"),
]


def test_property_head_is_the_campaign_world_models() -> None:
    model, no_relax, settings, space = world_models(None)
    assert settings == {"grid": 5, "n_trajectories": 16, "tau_ps": 100.0, "rollout_ps": 500.0}
    assert model.cfg.grid == 5 and model.cfg.relax > 0 and no_relax.cfg.relax == 0.0
    model.fit([], [])
    heads = property_head(model, space, [350.0])
    predicted = model.predict([{"temperature": 350.0, "length_ps": 500.0}])[0]
    for k, b in enumerate(BASINS):
        estimate = predicted.outcomes[f"pop_{b}"]
        assert heads[350.0]["pops"][k] == pytest.approx(estimate.mean, abs=1e-9)
        # predict adds a 500 ps run's sampling noise to the head's latent std
        assert 0 < heads[350.0]["std"][k] < estimate.std


def test_predict_rows_score_the_world_models_answers() -> None:
    import numpy as np

    from sciwm.bench.md_predict import LENGTHS, predict_rows
    from sciwm.space import Parameter, SearchSpace
    from surrogates.md.world_model import MDEmulatorWorldModel

    space = SearchSpace(
        (
            Parameter("temperature", "float", 300.0, 600.0),
            Parameter("length_ps", "float", 20.0, 2000.0, log=True, fidelity=True),
        )
    )
    fast = {"grid": 3, "n_trajectories": 4, "tau_ps": 100.0, "rollout_ps": 200.0}
    model = MDEmulatorWorldModel(space, [f"pop_{b}" for b in BASINS], **fast)
    model.fit([], [])
    (pred,) = model.predict([{"temperature": 350.0, "length_ps": 2000.0}])
    # two synthetic 4 ns "runs": frames in beta, then alpha_r, at the predicted populations
    p_ar = pred.outcomes["pop_alpha_r"].mean
    run = np.zeros(4000, dtype=int)
    run[: int(round(p_ar * 2000))] = 1
    run[2000 : 2000 + int(round(p_ar * 2000))] = 1
    far = np.full(4000, 2)  # always alpha_l: far outside every interval
    rows = predict_rows(model, {(350.0, "check"): [run, run], (351.0, "check"): [far]})
    got = {(r["temperature"], r["method"], r["metric"]): r["value"] for r in rows}
    assert got[(350.0, "sciwm_predict_2000ps", "n_real_runs")] == 4.0
    assert got[(350.0, "sciwm_predict_2000ps", "coverage90")] == 1.0
    assert got[(350.0, "sciwm_predict_2000ps", "in_range")] == 1.0
    assert got[(351.0, "sciwm_predict_2000ps", "basin_mae")] > 0.5
    assert got[(351.0, "sciwm_predict_2000ps", "coverage90")] < 0.5
    assert {r["method"] for r in rows} == {f"sciwm_predict_{v:g}ps" for v in LENGTHS}
