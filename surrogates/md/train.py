"""Training the flow-matching emulator (and an ensemble of them) on the MD data set."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from surrogates.md.data import Trajectory, sample_pairs
from surrogates.md.flow import FlowConfig, FlowEmulator, Molecule


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        steps: Optimiser steps per member.
        batch: Transitions per step.
        lr: Peak learning rate (cosine decay to 5 % of it).
        taus_ps: Jump lengths trained on (the model is conditioned on τ).
        members: Ensemble size.
        seed: Seed of member 0 (member k uses ``seed + k``).
        flow: The generative model's configuration.
    """

    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    taus_ps: tuple[float, ...] = (10.0, 100.0)
    members: int = 3
    seed: int = 0
    flow: FlowConfig = field(default_factory=FlowConfig)


def train_member(
    molecule: Molecule,
    trajectories: list[Trajectory],
    config: TrainConfig,
    member: int = 0,
    log: Callable[[str], None] | None = None,
    time_limit_s: float | None = None,
) -> tuple[FlowEmulator, list[float]]:
    """Train one emulator.

    Args:
        molecule: The chemistry.
        trajectories: Training trajectories.
        config: Training settings.
        member: Ensemble index (changes the seed).
        log: Optional progress callback.
        time_limit_s: Stop early after this many seconds.

    Returns:
        The trained model (in eval mode) and the loss of every step.
    """
    seed = config.seed + member
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FlowEmulator(molecule, config.flow)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-5)

    def schedule(step: int) -> float:
        warm = min(1.0, (step + 1) / 100)
        return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses: list[float] = []
    t0 = time.perf_counter()
    model.train()
    for step in range(config.steps):
        xc, xn, cond, tau = sample_pairs(trajectories, config.taus_ps, config.batch, gen)
        loss = model.loss(xc, xn, cond, tau)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss))
        if log and (step % 200 == 0 or step == config.steps - 1):
            recent = sum(losses[-200:]) / len(losses[-200:])
            log(f"member {member} step {step} loss {recent:.5f} ({time.perf_counter() - t0:.0f} s)")
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    model.eval()
    return model, losses


def train_ensemble(
    molecule: Molecule,
    trajectories: list[Trajectory],
    config: TrainConfig,
    log: Callable[[str], None] | None = None,
) -> list[FlowEmulator]:
    """Train ``config.members`` emulators with different seeds."""
    return [train_member(molecule, trajectories, config, k, log)[0] for k in range(config.members)]
