"""Emulation: the ensemble with its start pool, saved as tensors and restored exactly."""

from __future__ import annotations

import pytest
import torch

from sciwm.errors import WorldModelError
from sciwm.md.torch_ops import valid_frames
from surrogates.md.emulation import Emulation
from surrogates.md.flow import FlowEmulator
from surrogates.md.geometry import chirality

pytestmark = pytest.mark.timeout(60)


def make_emulation(tiny: FlowEmulator, geometry: torch.Tensor) -> Emulation:
    g = torch.Generator().manual_seed(3)
    pool = {t: geometry + 0.005 * torch.randn(8, 22, 3, generator=g) for t in (300.0, 500.0)}
    return Emulation([tiny, tiny], {"calibration": 1.5}, pool, (-120.0, 30.0), 9.0)


def test_state_round_trip_reproduces_rollouts(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    emu = make_emulation(tiny, geometry)
    tensors, extra = emu.state()
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    back = Emulation.from_state(tensors, extra)
    assert back.train_temperatures == [300.0, 500.0] and back.openmm_s_per_ns == 9.0
    assert back.meta["calibration"] == 1.5 and len(back.models) == 2
    start = emu.starts(310.0, 4, seed=1)
    torch.testing.assert_close(start, back.starts(310.0, 4, seed=1))
    a = emu.emulate(310.0, start, 30.0, 10.0, calibration=1.0, seed=2)
    b = back.emulate(310.0, start, 30.0, 10.0, calibration=1.0, seed=2)
    torch.testing.assert_close(a["rollout"].positions, b["rollout"].positions)
    assert a["mean"] == b["mean"]


def test_starts_come_from_the_nearest_temperature(
    tiny: FlowEmulator, geometry: torch.Tensor
) -> None:
    emu = make_emulation(tiny, geometry)
    near_500 = emu.starts(460.0, 16)
    pool = emu.pool[500.0]
    assert all(any(torch.equal(x, p) for p in pool) for x in near_500)


def test_validity_fractions_measure_emitted_and_raw_frames(
    tiny: FlowEmulator, geometry: torch.Tensor
) -> None:
    emu = make_emulation(tiny, geometry)
    out = emu.emulate(400.0, emu.starts(400.0, 4), 30.0, 10.0, calibration=1.0)
    roll = out["rollout"]
    frames = roll.positions[1:]
    recomputed = valid_frames(frames, tiny.bonds, tiny.r0) & (
        chirality(frames, tiny.sp3) == chirality(roll.positions[:1], tiny.sp3)
    ).all(-1)
    assert torch.equal(roll.valid, recomputed)
    assert out["valid_fraction"] == pytest.approx(float(recomputed.float().mean()))
    assert out["valid_fraction_raw"] == pytest.approx(float(roll.raw_valid.float().mean()))
    assert roll.raw_valid.shape == roll.valid.shape == (3, 4)


def test_state_without_emulator_is_an_error(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    tensors, extra = make_emulation(tiny, geometry).state()
    del tensors["emulator.pool0"]
    with pytest.raises(WorldModelError, match="emulator"):
        Emulation.from_state(tensors, extra)
