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
