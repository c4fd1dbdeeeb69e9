"""Saving and restoring a fitted ``MDEmulatorWorldModel`` as tensors plus JSON facts.

The state holds the heads, the cost head, the emulated grid, the answers' sources, choice and
conformal scores (:mod:`surrogates.md.answers`) and the emulator itself (weights and start
frames, :meth:`surrogates.md.emulation.Emulation.state`), so a saved model predicts and rolls
out without the checkpoint or the data set on disk. Nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sciwm.errors import WorldModelError
from surrogates.md.answers import Answers, Evidence
from surrogates.md.emulation import Emulation
from surrogates.md.heads import BayesLinear, polynomial_features

if TYPE_CHECKING:
    from surrogates.md.world_model import MDEmulatorWorldModel


def pack(model: MDEmulatorWorldModel) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(tensors, extra)`` of a fitted model (see the module doc)."""
    tensors: dict[str, Tensor] = {}
    for name, head in model._heads.items():
        tensors.update({f"head.{name}.{k}": v for k, v in head.state().items()})
    assert model._cost is not None
    tensors.update({f"cost.{k}": v for k, v in model._cost.state().items()})
    if model._grid is not None:
        tensors.update({f"grid.{k}": v for k, v in model._grid.items()})
    if model._answers is not None:
        tensors.update({f"answers.{k}": v for k, v in model._answers.state().items()})
    emu_tensors, emu_extra = model.emulation.state()
    tensors.update(emu_tensors)
    extra = {
        "emulator": emu_extra,
        "heads": list(model._heads),
        "has_grid": model._grid is not None,
        "train_range": list(model._train_range) if model._train_range else None,
    }
    return tensors, extra


def unpack(
    model: MDEmulatorWorldModel, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]
) -> None:
    """Inverse of :func:`pack` on a freshly built model of the same configuration.

    Raises:
        WorldModelError: If the state lacks a tensor it needs.
    """
    try:
        if extra.get("has_grid"):
            model._grid = {k: tensors[f"grid.{k}"] for k in ("u", "mean", "std", "traj_std")}
        heads = {}
        for name in extra["heads"]:
            w = tensors[f"head.{name}.mean"].numel()
            head = BayesLinear(
                polynomial_features(model.t_dim, w - 1), torch.zeros(w), torch.ones(w), 0.0
            )
            head.load({k: tensors[f"head.{name}.{k}"] for k in ("mean", "cov", "noise")})
            heads[name] = head
        p = 1 if model.l_dim is None else 2
        cost = BayesLinear(model._cost_features, torch.zeros(p), torch.ones(p), 0.3)
        cost.load({k: tensors[f"cost.{k}"] for k in ("mean", "cov", "noise")})
    except KeyError as exc:
        raise WorldModelError(f"saved md_emulator state lacks {exc}; save it again") from None
    if "emulator" in extra:  # saved with its weights: no checkpoint file needed
        model._emu = Emulation.from_state(dict(tensors), dict(extra["emulator"]))
    model._heads, model._cost = heads, cost
    model._answers = _answers(model, tensors)
    rng = extra.get("train_range")
    model._train_range = (float(rng[0]), float(rng[1])) if rng else None


def _answers(model: MDEmulatorWorldModel, tensors: Mapping[str, Tensor]) -> Answers | None:
    saved = {k[8:]: v for k, v in tensors.items() if k.startswith("answers.")}
    if "choice" not in saved:  # saved before the answers existed: the heads alone
        return None
    ev = {
        name: Evidence(saved[f"{name}.t"], saved[f"{name}.y"], saved[f"{name}.std"])
        if f"{name}.t" in saved
        else None
        for name in ("real", "grid")
    }
    answers = Answers(model._to_unit, model.t_dim, model._noise_at, ev["real"], ev["grid"])
    answers.load(saved)
    return answers
