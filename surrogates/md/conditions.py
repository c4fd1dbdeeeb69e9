"""The conditions of an MD question: temperature, run length, their noise and their range.

:class:`Conditions` is the part of :class:`~surrogates.md.world_model.MDEmulatorWorldModel`
that reads a question's temperature and run length from unit-cube points, gives the sampling
noise of one real run of that length (measured on the data set's real runs), says where the
answers came from, and says when a question lies outside the conditions the model was
trained on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciwm.md.observables import PER_FRAME
from sciwm.space import Parameter
from surrogates.md.answers import SOURCES


def unit_to_value(u: Tensor, p: Parameter) -> Tensor:
    lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
    if p.log:
        return lo * (hi / lo) ** u
    return lo + (hi - lo) * u


class Conditions:
    """Temperature and length of questions (mixed into the MD world model; it provides
    ``space``, ``cfg``, ``t_name``, ``t_dim``, ``l_name``, ``l_dim``, ``outcomes``,
    ``_grid``, ``_answers`` and ``_load``)."""

    space: Any
    cfg: Any
    t_name: str
    t_dim: int
    l_name: str
    l_dim: int | None
    outcomes: list[str]
    _grid: dict[str, Tensor] | None
    _answers: Any
    _train_range: tuple[float, float] | None

    def _load(self) -> Any:  # provided by the world model
        raise NotImplementedError

    def _run_noise(self, u_t: Tensor, length: Tensor, k: int) -> Tensor:
        """Sampling std of observable ``k`` in one real run of ``length`` ps at ``u_t``: from
        the data set's real runs (block means) when the emulation has them, else from the
        spread of the emulated trajectories."""
        temperature = unit_to_value(u_t.double(), self.space[self.t_name])
        real = self._load().run_noise_std(temperature, length.double(), k)
        if real is not None:
            return real.clamp(0.005, 0.5)
        assert self._grid is not None
        g = self._grid
        if g["u"].numel() == 1:
            s = g["traj_std"][0, k].expand_as(u_t)
        else:
            s = torch.from_numpy(
                np.interp(u_t.numpy(), g["u"].numpy(), g["traj_std"][:, k].numpy())
            )
        ratio = (self.cfg.rollout_ps / length.clamp_min(1.0)).sqrt()
        return (s * ratio).clamp(0.01, 0.5)

    def _length(self, X: Tensor) -> Tensor:
        if self.l_dim is None:
            return torch.full(X.shape[:-1], self.cfg.rollout_ps, dtype=torch.double)
        return unit_to_value(X[..., self.l_dim].double(), self.space[self.l_name])

    def _to_unit(self, t: Tensor) -> Tensor:
        """``n x d`` unit-cube points at ``n`` temperatures (K), other coordinates at 0.5."""
        p = self.space[self.t_name]
        lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
        u = torch.log(t / lo) / math.log(hi / lo) if p.log else (t - lo) / (hi - lo)
        X = torch.full((t.numel(), self.space.dim), 0.5, dtype=torch.double)
        X[:, self.t_dim] = u.double()
        return X

    def _noise_at(self, t: Tensor, length: Tensor) -> Tensor:
        u = self._to_unit(t)[:, self.t_dim]
        return torch.stack([self._run_noise(u, length, k) for k in range(len(PER_FRAME))], -1)

    def _source_note(self, ms: float) -> str:
        """Where the answers came from and how long they took."""
        by: dict[str, list[str]] = {}
        for name in self.outcomes:
            source = "real results"
            if self._answers is not None and name in PER_FRAME:
                source = SOURCES[int(self._answers.choice[PER_FRAME.index(name)])]
            by.setdefault(source, []).append(name)
        where = "; ".join(f"{', '.join(v)} from {k}" for k, v in by.items())
        return f"{where}; answered in {ms:.2f} ms"

    def _trained_range(self) -> tuple[float, float] | None:
        return self._train_range

    def _extrapolation_reason(
        self, params: Mapping[str, Any], trained: tuple[float, float] | None
    ) -> str | None:
        """Why ``params`` lie outside the trained conditions: a temperature outside the
        emulator's training temperatures, or a run length outside those whose sampling noise
        was measured on real runs; ``None`` inside both."""
        t = float(params[self.t_name])
        if trained is not None and not (trained[0] <= t <= trained[1]):
            return (
                f"{self.t_name}={t:g} K is outside the emulator's training temperatures "
                f"{trained[0]:g}-{trained[1]:g} K"
            )
        lengths = self._load().noise_length_range if self.l_name in params else None
        if lengths is not None:
            length = float(params[self.l_name])
            if not (lengths[0] <= length <= lengths[1]):
                return (
                    f"{self.l_name}={length:g} ps is outside the run lengths measured on real "
                    f"runs ({lengths[0]:g}-{lengths[1]:g} ps)"
                )
        return None
