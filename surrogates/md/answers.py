"""How the MD world model answers an emulable observable: which source, how wide, how sure.

For every observable of :data:`~sciwm.md.observables.PER_FRAME` (the basin populations and
the mean backbone cosines) :class:`Answers` holds

* the **sources** it can answer from, each a Bayesian polynomial regression in temperature
  (:class:`~surrogates.md.heads.BayesLinear`): ``real_linear`` / ``real_quadratic`` on the
  real runs the emulator was trained on (one mean per training temperature, its noise the
  measured sampling noise of a run that long), ``emulator`` on the emulator's rollouts over
  the campaign's temperature grid, and ``real_and_emulator`` on both; every source also
  learns from the campaign's own real results;
* the **choice** of source per observable, made on data apart from what the benchmark
  reports: the mean absolute error on real runs at temperatures each candidate did not see —
  interior training temperatures held out in turn (the source refitted without them) and the
  shipped calibration runs (:mod:`sciwm.md.calibration_runs`, role ``calibration``: 325 and
  550 K, never trained on);
* split-conformal **scores** of the chosen source on the same held-out runs, cut into runs of
  0.5, 1 and 2 ns: ``|y - mean| / sqrt(latent var + run noise var)`` with the run noise of
  that length. The interval at level ``a`` is ``mean ± q_a * sqrt(...)`` with ``q_a`` the
  conformal quantile of the scores (pooled over the lengths: kept per length they were no
  better calibrated and too few for high levels), so it is calibrated at every level and
  widens for short runs through the run noise.

It is built once per world model (at its first fit, from the emulator's data set) and saved
with it as tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciwm.md.observables import PER_FRAME, frame_values
from surrogates.md.emulation import Emulation, block_means
from surrogates.md.heads import BayesLinear, polynomial_features

#: The sources, in the order of :attr:`Answers.choice`'s codes.
SOURCES = ("real_linear", "real_quadratic", "emulator", "real_and_emulator")
#: Lengths (ps) the held-out runs are cut into for the conformal scores.
SCORE_LENGTHS = (500.0, 1000.0, 2000.0)
#: Floor on a head's noise std (a real mean or an emulated one is never exact).
MIN_NOISE = 2e-3


@dataclass
class Evidence:
    """What a source is conditioned on: ``n`` temperatures (K), ``n x K`` values and stds."""

    t: Tensor
    y: Tensor
    std: Tensor

    def without(self, temperature: float) -> Evidence:
        keep = self.t != temperature
        return Evidence(self.t[keep], self.y[keep], self.std[keep])

    @staticmethod
    def cat(*parts: Evidence) -> Evidence:
        return Evidence(*(torch.cat([getattr(p, f) for p in parts]) for f in ("t", "y", "std")))


@dataclass
class Check:
    """A held-out real run: temperature, length (ps), ``K`` observed values, and the training
    temperature left out of the sources for it (``None``: none, a calibration run)."""

    t: float
    length: float
    y: Tensor
    left_out: float | None


class Answers:
    """Source choice and conformal scores per observable (see the module doc).

    Args:
        to_unit: Maps ``n`` temperatures (K) to ``n x d`` unit-cube points (other
            coordinates at 0.5).
        t_dim: The temperature's coordinate.
        run_noise: ``(temperatures, lengths) -> n x K`` sampling std of one real run.
        real: Evidence from the real training runs (``None`` without them).
        grid: Evidence from the emulator's grid (``None`` without one).
    """

    def __init__(
        self,
        to_unit: Callable[[Tensor], Tensor],
        t_dim: int,
        run_noise: Callable[[Tensor, Tensor], Tensor],
        real: Evidence | None,
        grid: Evidence | None,
    ) -> None:
        self.to_unit, self.t_dim, self.run_noise = to_unit, t_dim, run_noise
        self.real, self.grid = real, grid
        k = len(PER_FRAME)
        self.choice = torch.full((k,), self.available()[-1], dtype=torch.long)
        #: Per observable, per length of :data:`SCORE_LENGTHS`: sorted conformal scores.
        self.scores: list[list[Tensor]] = [
            [torch.empty(0, dtype=torch.double) for _ in SCORE_LENGTHS] for _ in range(k)
        ]
        self.errors = torch.full((len(SOURCES), k), math.nan, dtype=torch.double)

    # -- sources ------------------------------------------------------------------------
    def available(self) -> list[int]:
        """Codes of the sources this evidence allows (at least one)."""
        out = []
        if self.real is not None and self.real.t.numel() >= 2:
            out += [0, 1]
        if self.grid is not None and self.grid.t.numel() >= 1:
            out.append(2)
            if self.real is not None:
                out.append(3)
        return out or [2]

    def evidence(self, source: int, left_out: float | None = None) -> Evidence:
        real = self.real if left_out is None or self.real is None else self.real.without(left_out)
        if source in (0, 1):
            assert real is not None
            return real
        assert self.grid is not None
        if source == 2 or real is None:
            return self.grid
        return Evidence.cat(real, self.grid)

    def head(
        self,
        k: int,
        source: int | None = None,
        extra: tuple[Tensor, Tensor, Tensor] | None = None,
        left_out: float | None = None,
    ) -> BayesLinear:
        """The head of observable ``k`` from ``source`` (default: the chosen one).

        Args:
            k: Index into :data:`PER_FRAME`.
            source: Code into :data:`SOURCES`.
            extra: The campaign's real results ``(X n x d, y n, noise n)``.
            left_out: A training temperature to leave out of the real evidence.
        """
        source = int(self.choice[k]) if source is None else source
        ev = self.evidence(source, left_out)
        xs, ys, ns = [self.to_unit(ev.t)], [ev.y[:, k]], [ev.std[:, k].clamp_min(MIN_NOISE)]
        if extra is not None and extra[0].numel():
            xs.append(extra[0].double())
            ys.append(extra[1].double())
            ns.append(extra[2].double().clamp_min(MIN_NOISE))
        y = torch.cat(ys)
        degree = 1 if source == 0 else 2
        scale = max(float(y.abs().max()), 1.0)
        head = BayesLinear(
            polynomial_features(self.t_dim, degree),
            torch.tensor([float(y.mean())] + [0.0] * degree),
            torch.full((degree + 1,), scale),
            noise_std=0.0,
        )
        head.update(torch.cat(xs), y, torch.cat(ns))
        return head

    # -- choosing and calibrating on held-out real runs ----------------------------------
    def calibrate(self, checks: Sequence[Check]) -> None:
        """Choose each observable's source and set its conformal scores on ``checks``."""
        if not checks:
            return
        k_all = len(PER_FRAME)
        per_source: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        for source in self.available():
            mean, std = self._moments(source, checks)
            per_source[source] = (mean, std, torch.stack([c.y for c in checks]).double())
            longest = torch.tensor([c.length >= max(SCORE_LENGTHS) for c in checks])
            err = (mean - per_source[source][2]).abs()[longest]
            self.errors[source] = err.mean(0)
        for k in range(k_all):
            best = min(per_source, key=lambda s: float(self.errors[s, k]))
            self.choice[k] = best
            mean, std, y = per_source[best]
            z = torch.sort((y[:, k] - mean[:, k]).abs() / std[:, k]).values
            self.scores[k] = [z.clone() for _ in SCORE_LENGTHS]  # pooled over lengths

    def _moments(self, source: int, checks: Sequence[Check]) -> tuple[Tensor, Tensor]:
        """``n x K`` mean and total std (latent + the run's noise) of ``source`` at checks."""
        t = torch.tensor([c.t for c in checks], dtype=torch.double)
        length = torch.tensor([c.length for c in checks], dtype=torch.double)
        noise = self.run_noise(t, length)
        mean = torch.zeros(len(checks), len(PER_FRAME), dtype=torch.double)
        std = torch.zeros_like(mean)
        groups: dict[float | None, list[int]] = {}
        for i, c in enumerate(checks):
            groups.setdefault(c.left_out, []).append(i)
        for left_out, rows in groups.items():
            X = self.to_unit(t[rows])
            for k in range(len(PER_FRAME)):
                m, s = self.head(k, source, left_out=left_out).moments(X, observation_noise=False)
                mean[rows, k] = m
                std[rows, k] = (s**2 + noise[rows, k] ** 2).sqrt().clamp_min(1e-6)
        return mean, std

    def quantile(self, k: int, level: float, length_ps: float = max(SCORE_LENGTHS)) -> float:
        """Conformal quantile of observable ``k``'s scores at ``level``, from the held-out
        runs of the scored length nearest ``length_ps`` (in log length); the normal quantile
        without scores."""
        j = int(np.argmin([abs(math.log(max(length_ps, 1e-3) / v)) for v in SCORE_LENGTHS]))
        s = self.scores[k][j]
        if s.numel() == 0:
            from statistics import NormalDist

            return NormalDist().inv_cdf(0.5 + level / 2)
        i = min(s.numel() - 1, max(0, math.ceil((s.numel() + 1) * level) - 1))
        return float(s[i])

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Tensor]:
        out = {"choice": self.choice.clone(), "errors": self.errors.clone()}
        for k, per_length in enumerate(self.scores):
            for j, s in enumerate(per_length):
                out[f"scores{k}.{j}"] = s.clone()
        for name, ev in (("real", self.real), ("grid", self.grid)):
            if ev is not None:
                out.update({f"{name}.t": ev.t, f"{name}.y": ev.y, f"{name}.std": ev.std})
        return out

    def load(self, state: dict[str, Tensor]) -> None:
        self.choice = state["choice"].long()
        self.errors = state["errors"].double()
        self.scores = [
            [state[f"scores{k}.{j}"].double() for j in range(len(SCORE_LENGTHS))]
            for k in range(len(PER_FRAME))
        ]


def real_evidence(emu: Emulation) -> tuple[Evidence | None, list[Check]]:
    """The training runs' means per temperature, and the held-out checks: the interior
    training temperatures' runs in blocks (their temperature left out), and the shipped
    calibration runs in blocks."""
    if emu.train_frames is None:
        return None, []
    temps = sorted(emu.train_frames)
    means, stds = [], []
    for t in temps:
        values = emu.train_frames[t]
        means.append(values.mean(0))
        length = torch.tensor([values.shape[0] * emu.frame_ps], dtype=torch.double)
        noise = emu_noise(emu, torch.tensor([t], dtype=torch.double), length)
        stds.append(noise[0])
    real = Evidence(
        torch.tensor(temps, dtype=torch.double),
        torch.stack(means).double(),
        torch.stack(stds).double(),
    )
    checks = []
    for t in temps[1:-1]:
        for length in SCORE_LENGTHS:
            for y in block_means(emu.train_frames[t], length, emu.frame_ps):
                checks.append(Check(t, length, y.double(), left_out=t))
    checks += calibration_checks()
    return real, checks


def calibration_checks() -> list[Check]:
    """The shipped calibration runs (:mod:`sciwm.md.calibration_runs`) cut into blocks."""
    from sciwm.md.calibration_runs import DEFAULT_PATH, load_runs

    if not DEFAULT_PATH.is_file():
        return []
    out = []
    for run in load_runs(DEFAULT_PATH, role="calibration"):
        values = frame_values(run["phi"], run["psi"])
        frames = torch.from_numpy(np.stack([values[n] for n in PER_FRAME], -1))
        for length in SCORE_LENGTHS:
            for y in block_means(frames, length, float(run["frame_ps"])):
                out.append(Check(float(run["temperature"]), length, y.double(), None))
    return out


def emu_noise(emu: Emulation, t: Tensor, length: Tensor) -> Tensor:
    """``n x K`` sampling std of one real run (the emulation's table; zeros without it)."""
    cols = []
    for k in range(len(PER_FRAME)):
        s = emu.run_noise_std(t, length, k)
        cols.append(torch.zeros_like(t) if s is None else s.double())
    return torch.stack(cols, -1)


__all__ = ["SOURCES", "Answers", "Check", "Evidence", "calibration_checks", "real_evidence"]
