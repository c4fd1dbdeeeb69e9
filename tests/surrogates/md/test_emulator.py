"""The equivariant network, the flow-matching emulator, training and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sciwm.md.torch_ops import bond_lengths
from surrogates.md.data import Trajectory
from surrogates.md.flow import FlowEmulator, rollout
from surrogates.md.geometry import centre
from surrogates.md.train import TrainConfig, load_checkpoint, save_checkpoint, train_member
from tests.surrogates.md.conftest import random_rotation

pytestmark = pytest.mark.timeout(60)


def inputs(geometry: torch.Tensor, b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xc = geometry + 0.02 * torch.randn(b, 22, 3, generator=g)
    xs = xc + 0.1 * torch.randn(b, 22, 3, generator=g)
    cond = torch.tensor([[300.0], [450.0], [600.0]])[:b]
    s = torch.tensor([0.1, 0.5, 0.9])[:b]
    return xs, xc, cond, s


def test_velocity_rotates_with_input(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    xs, xc, cond, s = inputs(geometry)
    c = tiny.encode_conditions(cond, torch.full((3,), 10.0))
    r = random_rotation(7)
    shift = torch.tensor([1.0, -2.0, 0.5])
    with torch.no_grad():
        v = tiny.velocity(xs, xc, c, s)
        v_rot = tiny.velocity(xs @ r.T + shift, xc @ r.T + shift, c, s)
    assert v.abs().max() > 1e-4  # not trivially zero
    torch.testing.assert_close(v_rot, v @ r.T, atol=2e-5, rtol=1e-4)


def test_velocity_permutes_with_like_atoms(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    """Swapping two hydrogens of the same methyl group swaps their outputs."""
    xs, xc, cond, s = inputs(geometry)
    c = tiny.encode_conditions(cond, torch.full((3,), 10.0))
    perm = list(range(22))
    perm[0], perm[2] = 2, 0  # HH31 <-> HH32, both bonded to CH3
    with torch.no_grad():
        v = tiny.velocity(xs, xc, c, s)
        v_perm = tiny.velocity(xs[:, perm], xc[:, perm], c, s)
    torch.testing.assert_close(v_perm, v[:, perm], atol=1e-6, rtol=1e-5)


def test_samples_rotate_with_input(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    """With the same noise (rotated too), a sampled jump rotates with the start."""
    xc = centre(geometry.unsqueeze(0).repeat(2, 1, 1))
    r = random_rotation(11)
    cond, tau = torch.full((2, 1), 400.0), torch.full((2,), 100.0)
    out = tiny.sample(xc, cond, tau, torch.Generator().manual_seed(5))
    # Equivalent: sample from the rotated start with rotated noise = rotate the output.
    noise = tiny.noise(xc, torch.Generator().manual_seed(5)) - xc
    x = xc @ r.T + noise @ r.T
    xcr = xc @ r.T
    c = tiny.encode_conditions(cond, tau)
    h = 1.0 / tiny.config.ode_steps
    with torch.no_grad():
        for k in range(tiny.config.ode_steps):
            s0 = torch.full((2,), k * h)
            v0 = tiny.velocity(x, xcr, c, s0)
            v1 = tiny.velocity(x + h * v0, xcr, c, s0 + h)
            x = x + 0.5 * h * (v0 + v1)
    torch.testing.assert_close(centre(x), out @ r.T, atol=2e-5, rtol=1e-4)


def synthetic_trajectory(geometry: torch.Tensor, temperature: float, n: int = 60) -> Trajectory:
    g = torch.Generator().manual_seed(int(temperature))
    frames = []
    for k in range(n):
        r = random_rotation(k + int(temperature))
        frames.append((geometry + 0.01 * torch.randn(22, 3, generator=g)) @ r.T)
    return Trajectory(torch.stack(frames), temperature, 0, "train", 1.0, 10.0)


def test_training_lowers_the_loss(molecule, geometry: torch.Tensor, tiny) -> None:
    trajs = [synthetic_trajectory(geometry, 300.0), synthetic_trajectory(geometry, 500.0)]
    config = TrainConfig(steps=40, batch=8, lr=5e-3, taus_ps=(5.0, 10.0), flow=tiny.config)
    model, losses = train_member(molecule, trajs, config)
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.8 * first, (first, last)


def test_rollout_batch_shapes_and_validity(tiny: FlowEmulator, geometry: torch.Tensor) -> None:
    start = geometry.unsqueeze(0).repeat(4, 1, 1)
    roll = rollout([tiny, tiny], start, torch.full((4, 1), 350.0), 10.0, 3, seed=1)
    assert roll.positions.shape == (4, 4, 22, 3)
    assert roll.raw_valid.shape == (3, 4) and roll.raw_valid.dtype == torch.bool
    # bond projection after each jump moves bonds towards the force-field lengths
    raw = rollout([tiny], start, torch.full((4, 1), 350.0), 10.0, 1, project=False, seed=1)
    fixed = rollout([tiny], start, torch.full((4, 1), 350.0), 10.0, 1, project=True, seed=1)

    def error(x: torch.Tensor) -> torch.Tensor:
        return (bond_lengths(x, tiny.bonds) / tiny.r0 - 1).abs().mean()

    assert error(fixed.positions[1]) < 0.5 * error(raw.positions[1])


def test_checkpoint_round_trip(tiny: FlowEmulator, geometry: torch.Tensor, tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ens.pt", [tiny, tiny], {"note": "test"})
    models, meta = load_checkpoint(path)
    assert len(models) == 2 and meta["note"] == "test"
    xs, xc, cond, s = inputs(geometry)
    c = tiny.encode_conditions(cond, torch.full((3,), 10.0))
    with torch.no_grad():
        torch.testing.assert_close(models[1].velocity(xs, xc, c, s), tiny.velocity(xs, xc, c, s))
    torch.load(path, weights_only=True)  # tensors only


def test_old_checkpoint_config_loads_without_edge_deltas(tiny: FlowEmulator) -> None:
    """Checkpoints written before ``edge_deltas`` existed rebuild the network they trained."""
    import dataclasses

    from surrogates.md.train import config_from_dict, config_to_dict

    net = dataclasses.replace(tiny.config.net, edge_deltas=True)
    new = FlowEmulator(tiny.molecule, dataclasses.replace(tiny.config, net=net))
    data = config_to_dict(new.config)
    assert data["net"]["edge_deltas"] is True
    del data["net"]["edge_deltas"]
    old = config_from_dict(data)
    assert old.net.edge_deltas is False
    n_old = FlowEmulator(tiny.molecule, old).net.readout.lin_e.in_features
    assert n_old == new.net.readout.lin_e.in_features - 2


def test_ema_weights_differ_from_last_weights(molecule, geometry: torch.Tensor, tiny) -> None:
    trajs = [synthetic_trajectory(geometry, 300.0)]
    base = dict(steps=20, batch=4, lr=5e-3, taus_ps=(5.0,), flow=tiny.config)
    last, _ = train_member(molecule, trajs, TrainConfig(**base, ema=0.0))
    averaged, _ = train_member(molecule, trajs, TrainConfig(**base, ema=0.9))
    w_last = torch.cat([p.flatten() for p in last.parameters()])
    w_avg = torch.cat([p.flatten() for p in averaged.parameters()])
    assert torch.isfinite(w_avg).all() and not torch.allclose(w_last, w_avg)


def test_emitted_frames_are_valid_or_the_jump_is_rejected(
    tiny: FlowEmulator, geometry: torch.Tensor
) -> None:
    """An untrained network's samples fail; the rollout then keeps the (valid) start frame."""
    from sciwm.md.torch_ops import valid_frames

    start = geometry.unsqueeze(0).repeat(4, 1, 1)
    roll = rollout([tiny], start, torch.full((4, 1), 350.0), 10.0, 3, seed=2, resamples=1)
    assert bool(roll.valid.all())
    emitted = roll.positions[1:]
    assert bool(valid_frames(emitted, tiny.bonds, tiny.r0).all())
    stayed = roll.rejected
    moved = (emitted - roll.positions[:-1]).abs().amax((-1, -2)) > 0
    assert torch.equal(moved, ~stayed)  # a rejected jump leaves the frame unchanged
