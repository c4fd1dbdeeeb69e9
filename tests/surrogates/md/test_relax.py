"""The corrector: short real OpenMM runs that drain a noisy sample's strain, keep its basin."""

from __future__ import annotations

import pytest
import torch

from sciwm.errors import WorldModelError
from sciwm.md.molecule import Molecule
from sciwm.md.torch_ops import dihedral, valid_frames
from surrogates.md.flow import FlowEmulator, rollout
from surrogates.md.relax import RelaxConfig, Relaxer

pytestmark = pytest.mark.timeout(60)


def _energy(x: torch.Tensor) -> list[float]:
    """Potential energies (kJ/mol) of ``B x 22 x 3`` frames under the relaxer's force field."""
    import openmm
    from openmm import unit

    from sciwm.md.systems import SystemSpec, build_system

    _, system, _ = build_system(SystemSpec())
    ctx = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    out = []
    for frame in x.double().numpy():
        ctx.setPositions(frame)
        state = ctx.getState(getEnergy=True)
        out.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    return out


def _noisy(geometry: torch.Tensor, n: int, scale: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return geometry.expand(n, -1, -1) + scale * torch.randn(n, 22, 3, generator=g)


def test_relaxation_drains_strain_and_keeps_the_basin(
    geometry: torch.Tensor, molecule: Molecule
) -> None:
    noisy = _noisy(geometry, 4, 0.008)
    relaxer = Relaxer(config=RelaxConfig(length_ps=0.3))
    out, ok = relaxer(noisy, torch.full((4, 1), 300.0), seed=1)
    assert ok.all() and out.shape == noisy.shape
    before, after = _energy(noisy), _energy(out)
    # 0.008 nm of noise on every atom costs ~100-350 kJ/mol of strain (mostly bonds); after
    # 0.3 ps every frame is back in the thermal range, well below the least strained input
    assert min(before) > max(after)
    assert sum(before) / 4 > sum(after) / 4 + 150.0
    assert valid_frames(out, torch.tensor(molecule.bonds), torch.tensor(molecule.r0)).all()
    phi0, phi1 = dihedral(noisy, molecule.phi), dihedral(out, molecule.phi)
    # no barrier crossing in 0.3 ps: φ stays within a few tens of degrees of where it was
    assert ((phi1 - phi0 + 180.0) % 360.0 - 180.0).abs().max() < 60.0
    assert torch.allclose(out.mean(dim=1), torch.zeros(4, 3), atol=1e-6)  # centred


def test_same_seed_same_frames_and_zero_length_is_identity(geometry: torch.Tensor) -> None:
    noisy = _noisy(geometry, 2, 0.004)
    cond = torch.full((2, 1), 400.0)
    relaxer = Relaxer()
    a, _ = relaxer(noisy, cond, seed=3)
    relaxer(noisy, cond, seed=4)
    b, _ = relaxer(noisy, cond, seed=3)
    torch.testing.assert_close(a, b)
    same, ok = Relaxer(config=RelaxConfig(length_ps=0.0))(noisy, cond)
    assert same is noisy and ok.all()


def test_overlapping_atoms_are_minimised_first_or_left_as_they_were(
    geometry: torch.Tensor,
) -> None:
    bad = geometry.clone().unsqueeze(0)
    bad[0, 5] = bad[0, 15] + 0.001  # two oxygens on top of each other: forces blow up
    out, ok = Relaxer()(bad, torch.tensor([[300.0]]), seed=0)
    assert torch.isfinite(out).all()
    if not ok[0]:  # the retry after minimisation failed too: the frame is returned unchanged
        torch.testing.assert_close(out, bad - bad.mean(dim=1, keepdim=True))


def test_rollout_with_the_corrector_records_it(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    start = _noisy(geometry, 3, 0.002)
    cond = torch.full((3, 1), 350.0)
    roll = rollout(tiny, start, cond, 10.0, 2, seed=0, relax=Relaxer(), ode_steps=1)
    assert roll.relaxed is not None and roll.relaxed.shape == (2, 3)
    again = rollout(tiny, start, cond, 10.0, 2, seed=0, relax=Relaxer(), ode_steps=1)
    torch.testing.assert_close(roll.positions, again.positions)
    assert rollout(tiny, start, cond, 10.0, 1, seed=0).relaxed is None


def test_bad_settings_and_wrong_system_are_clear_errors(geometry: torch.Tensor) -> None:
    with pytest.raises(WorldModelError, match="length_ps must be >= 0"):
        RelaxConfig(length_ps=-1.0)
    with pytest.raises(WorldModelError, match="temperature"):
        Relaxer(condition_names=("pressure",))
    with pytest.raises(WorldModelError, match="22 atoms"):
        Relaxer()(torch.zeros(1, 5, 3), torch.tensor([[300.0]]))
