"""Training the flow-matching emulator (and an ensemble of them) on the MD data set."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sciwm.errors import WorldModelError
from sciwm.md.molecule import Molecule
from surrogates.md.data import Trajectory, sample_pairs
from surrogates.md.egnn import NetConfig
from surrogates.md.flow import FlowConfig, FlowEmulator


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
        ema: Decay of the exponential moving average of the weights that the trained model
            ends up with (0 keeps the last weights).
        flow: The generative model's configuration.
    """

    steps: int = 3000
    batch: int = 32
    lr: float = 2e-3
    taus_ps: tuple[float, ...] = (10.0, 100.0)
    members: int = 3
    seed: int = 0
    ema: float = 0.999
    flow: FlowConfig = field(default_factory=FlowConfig)


def train_member(
    molecule: Molecule,
    trajectories: list[Trajectory],
    config: TrainConfig,
    member: int = 0,
    log: Callable[[str], None] | None = None,
    time_limit_s: float | None = None,
    init: FlowEmulator | None = None,
) -> tuple[FlowEmulator, list[float]]:
    """Train one emulator.

    Args:
        molecule: The chemistry.
        trajectories: Training trajectories.
        config: Training settings.
        member: Ensemble index (changes the seed).
        log: Optional progress callback.
        time_limit_s: Stop early after this many seconds.
        init: Start from this model's weights (same configuration) instead of at random.

    Returns:
        The trained model (in eval mode) and the loss of every step.
    """
    seed = config.seed + member
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FlowEmulator(molecule, config.flow)
    if init is not None:
        model.load_state_dict(init.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-5)

    def schedule(step: int) -> float:
        warm = min(1.0, (step + 1) / 100)
        return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses: list[float] = []
    params = [p for p in model.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in params]
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
        with torch.no_grad():
            decay = min(config.ema, (1 + step) / (10 + step))  # short warm-up of the average
            for e, p in zip(ema, params, strict=True):
                e.lerp_(p.detach(), 1.0 - decay)
        losses.append(float(loss.detach()))
        if log and (step % 200 == 0 or step == config.steps - 1):
            recent = sum(losses[-200:]) / len(losses[-200:])
            log(f"member {member} step {step} loss {recent:.5f} ({time.perf_counter() - t0:.0f} s)")
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    if config.ema > 0:
        with torch.no_grad():
            for e, p in zip(ema, params, strict=True):
                p.copy_(e)
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


def ensemble_state(models: list[FlowEmulator]) -> dict[str, torch.Tensor]:
    """All members' weights as one flat tensor dict (``member{k}.<name>``)."""
    return {
        f"member{k}.{name}": t.detach().cpu()
        for k, m in enumerate(models)
        for name, t in m.state_dict().items()
    }


def config_to_dict(config: FlowConfig) -> dict[str, Any]:
    """JSON-able form of a :class:`FlowConfig`."""
    return asdict(config)


def config_from_dict(data: dict[str, Any]) -> FlowConfig:
    """Inverse of :func:`config_to_dict`."""
    # checkpoints written before ``edge_deltas`` existed were trained without them
    net = NetConfig(**{"edge_deltas": False, **data["net"]})
    rest = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "net"}
    return FlowConfig(net=net, **rest)


def save_checkpoint(path: str | Path, models: list[FlowEmulator], info: dict[str, Any]) -> Path:
    """Write an ensemble: ``path`` (tensors, ``torch.save``) and ``path.json`` (config, facts).

    Nothing but tensors goes into the tensor file, so loading needs no pickle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ensemble_state(models), path)
    meta = {
        "members": len(models),
        "flow": config_to_dict(models[0].config),
        "molecule": asdict(models[0].molecule),
        **info,
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return path


def build_ensemble(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> list[FlowEmulator]:
    """Rebuild an ensemble from :func:`ensemble_state` tensors and checkpoint facts."""
    config = config_from_dict(meta["flow"])
    molecule = Molecule.from_meta(meta["molecule"])
    models = []
    for k in range(int(meta["members"])):
        m = FlowEmulator(molecule, config)
        prefix = f"member{k}."
        m.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)})
        m.eval()
        models.append(m)
    return models


def load_checkpoint(path: str | Path) -> tuple[list[FlowEmulator], dict[str, Any]]:
    """Read an ensemble written by :func:`save_checkpoint`.

    Raises:
        WorldModelError: If the files are missing or do not match.
    """
    path = Path(path)
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise WorldModelError(
            f"no emulator checkpoint at {path} (+ .json); train one with "
            "`python -m surrogates.md.train --out PATH`"
        )
    meta = json.loads(path.with_suffix(".json").read_text())
    try:
        tensors = torch.load(path, weights_only=True)
        return build_ensemble(tensors, meta), meta
    except (RuntimeError, KeyError, TypeError) as exc:
        raise WorldModelError(f"emulator checkpoint {path} does not load: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Command line: train an ensemble on the data set and save it."""
    import argparse

    from surrogates.md.data import load_dataset

    parser = argparse.ArgumentParser(description="Train the MD flow-matching emulator.")
    parser.add_argument("--data", default=None, help="data set (default: the committed one)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--members", type=int, default=TrainConfig.members)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--ema", type=float, default=TrainConfig.ema)
    parser.add_argument("--init", default=None, help="continue from this checkpoint's members")
    parser.add_argument("--ode-steps", type=int, default=FlowConfig.ode_steps)
    parser.add_argument(
        "--edge-deltas", action="store_true", help="edge features of pair-distance changes"
    )
    parser.add_argument(
        "--member-time-limit", type=float, default=None, help="stop a member after this many s"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    config = TrainConfig(
        steps=args.steps,
        members=args.members,
        seed=args.seed,
        batch=args.batch,
        lr=args.lr,
        ema=args.ema,
        flow=FlowConfig(net=NetConfig(edge_deltas=args.edge_deltas), ode_steps=args.ode_steps),
    )
    trajs = data.select(role="train")
    init = load_checkpoint(args.init)[0] if args.init else None
    if init is not None:
        config = TrainConfig(**{**config.__dict__, "flow": init[0].config})

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    models, losses = [], []
    t0 = time.perf_counter()
    for k in range(config.members):
        model, loss = train_member(
            data.molecule,
            trajs,
            config,
            k,
            log,
            time_limit_s=args.member_time_limit,
            init=init[k] if init is not None else None,
        )
        models.append(model)
        losses.append(sum(loss[-200:]) / len(loss[-200:]))
        save_checkpoint(
            args.out,
            models,
            {
                "train": {**asdict(config), "flow": None},
                "final_loss": losses,
                "train_wall_s": time.perf_counter() - t0,
                "train_temperatures": sorted({t.temperature for t in trajs}),
                "data": str(args.data or "data/md/alanine_vacuum.npz"),
            },
        )
        log(f"saved {len(models)} member(s) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
