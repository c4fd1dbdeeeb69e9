"""The engine: real short OpenMM runs, continuation, blow-ups, platform choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openmm")

from sciwm.md.engine import (  # noqa: E402
    RunConfig,
    SimulationFailed,
    choose_platform,
    platform_names,
    simulate,
)
from sciwm.md.systems import SystemSpec  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def test_short_simulation_is_real_and_consistent() -> None:
    """A few ps of alanine dipeptide: finite energies, bonds near the force field's lengths."""
    out = simulate(SystemSpec(), RunConfig(temperature=300.0, length_ps=4.0, equilibrate_ps=1.0))
    pos = out["positions"]
    assert pos.shape == (4, 22, 3) and np.all(np.isfinite(out["energy"]))
    assert out["n_steps"] == 2000 and out["platform"] == "Reference"
    # C-H bonds are constrained: every one at its amber14 length (0.109 nm) to 1e-4 nm.
    d = np.linalg.norm(pos[:, 0] - pos[:, 1], axis=-1)  # HH31-CH3 of ACE
    np.testing.assert_allclose(d, 0.109, atol=2e-4)
    # Same seed, same trajectory (Reference platform is deterministic).
    again = simulate(SystemSpec(), RunConfig(temperature=300.0, length_ps=4.0, equilibrate_ps=1.0))
    np.testing.assert_allclose(again["positions"], pos, atol=1e-6)
    # A continuation starts where the run ended: 10 fs later no atom has moved 0.05 nm
    # (hydrogens move ~2.5 nm/ps at 300 K; a run from the minimised structure is ~0.3 nm off).
    cont = simulate(
        SystemSpec(),
        RunConfig(temperature=300.0, length_ps=0.01, frame_ps=0.01, seed=1),
        start=(out["final_positions"], out["final_velocities"]),
    )
    assert cont["n_steps"] == 5
    assert np.abs(cont["positions"][0] - out["final_positions"]).max() < 0.05


def test_simulate_raises_on_blow_up() -> None:
    with pytest.raises(SimulationFailed, match="blew up"):
        simulate(
            SystemSpec(constraints="none"),
            RunConfig(temperature=900.0, timestep_fs=20.0, length_ps=20.0, equilibrate_ps=0.0),
        )


def test_platform_choice() -> None:
    names = platform_names()
    assert "Reference" in names and "CPU" in names
    platform, props = choose_platform("auto", SystemSpec())
    assert platform.getName() == "Reference" and props == {}
    platform, props = choose_platform("auto", SystemSpec(solvent="obc2"), threads=2)
    assert platform.getName() == "CPU" and props == {"Threads": "2"}
