"""Landmarking: real runs on the user's data set sharpen the prior's answers for other learners.

A *landmark* is a completed real run on the data set a question is about — typically one
cheap run of a fast learner, which a campaign can buy before the expensive ones. The
prior (:mod:`surrogates.mlrun.pretrain`) only knows the data set by its meta-features; a
landmark says how learners actually do there. :class:`LandmarkTable` holds the prior's
training runs (its :class:`~surrogates.mlrun.neighbours.NeighbourBank`) and answers, for a
learner ``L`` at size ``n``, from the ``K`` training data sets whose landmark learners scored
closest to the observed landmarks (meta-features break ties):

    estimate = mean observed landmark score + mean over those data sets of
               (score of L at n - score of the landmark learners at their sizes)

with the spread of that difference over the ``K`` data sets as its variance. :func:`adjust`
combines it with the prior's mean by precision weighting (:func:`combine`) and scales the
prior's std per data set by how far the completed runs there fell from the prior
(:func:`dataset_scale`: a data set the prior gets wrong gets wider intervals, shrunk toward
the global calibration).

A completed run of the asked learner itself on the same data set — its learning curve so
far, at smaller training sizes — says more than any other: in ``level`` mode the learner's
own residual at its nearest recorded size carries over to the asked size with weight
:data:`OWN_DECAY` per factor of ten in training size (:func:`own_weight`), on top of the
data set's level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from surrogates.mlrun.neighbours import NeighbourBank
from surrogates.mlrun.record import RunRecord

#: Training data sets used per estimate.
K = 15
#: Weight of the meta-feature distance next to the landmark-score distance (accuracy units).
META_WEIGHT = 0.01
#: Pseudo-runs at the global scale that a data set's own residuals are shrunk toward.
PRIOR_STRENGTH = 3.0
#: Fraction of the prior's error variance shared by all learners of a data set (chosen on
#: held-out data sets apart from those reported, see docs/mlrun.md).
SHARED = 0.5
#: Weight that a learner's own residual at one training size keeps at a size ten times
#: larger or smaller (chosen on held-out data sets apart from those reported: a learner's
#: curve up to a tenth of the largest size ranks the learners there at 0.845 pairwise
#: with 0.75, 0.838 with 1.0, 0.829 from the curve's last point alone; docs/mlrun.md).
OWN_DECAY = 0.75


def own_weight(log2_gap: float, decay: float = OWN_DECAY) -> float:
    """Weight of a learner's own residual ``log2_gap`` (log2 of the size ratio) away."""
    return float(decay ** (abs(log2_gap) / np.log2(10.0)))


@dataclass(frozen=True)
class Landmark:
    """A completed real run on the question's data set.

    Attributes:
        key: Learner key as the bank writes it (short learner name and settings).
        log2_size: log2 of its training size.
        score: Its measured final metric.
    """

    key: str
    log2_size: float
    score: float


class LandmarkTable:
    """The prior's training runs by (learner key, data set), for landmark look-ups.

    Args:
        bank: The prior's neighbour bank (its runs, positions and targets).
    """

    def __init__(self, bank: NeighbourBank) -> None:
        raw = bank.position * bank.sd + bank.mu
        self.runs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        meta: dict[str, np.ndarray] = {}
        frame: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for i, (key, d) in enumerate(zip(bank.learners, bank.datasets, strict=True)):
            if np.isfinite(bank.y[i, 0]):
                frame.setdefault((str(key), str(d)), []).append((raw[i, -1], bank.y[i, 0]))
            meta.setdefault(str(d), bank.position[i, :-1])
        for k, rows in frame.items():
            arr = np.array(sorted(rows))
            self.runs[k] = (arr[:, 0], arr[:, 1])
        self.datasets = sorted(meta)
        self.meta = np.stack([meta[d] for d in self.datasets]) if meta else np.zeros((0, 0))
        self.mu, self.sd = bank.mu[:-1], bank.sd[:-1]

    def _score(self, key: str, dataset: str, log2_size: float) -> float:
        """The learner's training score on ``dataset`` at the recorded size nearest."""
        found = self.runs.get((key, dataset))
        if found is None:
            return float("nan")
        sizes, scores = found
        return float(scores[int(np.argmin(np.abs(sizes - log2_size)))])

    def estimate(
        self,
        key: str,
        log2_size: float,
        meta: np.ndarray,
        landmarks: Sequence[Landmark],
        dataset: str = "",
    ) -> tuple[float, float] | None:
        """Landmark estimate ``(mean, var)`` of a learner's score, or ``None`` when too few
        training data sets have both it and the landmark learners.

        Args:
            key: The asked learner's key; log2_size: its log2 training size.
            meta: The question's data set meta-feature vector (raw, as the bank's positions).
            landmarks: Completed runs on that data set.
            dataset: Its name (left out if it is a training data set).
        """
        if not landmarks:
            return None
        q = (np.asarray(meta, float) - self.mu) / self.sd
        rows = []
        for j, d in enumerate(self.datasets):
            if d == dataset:
                continue
            target = self._score(key, d, log2_size)
            marks = [self._score(m.key, d, m.log2_size) for m in landmarks]
            if not np.isfinite(target) or not np.all(np.isfinite(marks)):
                continue
            gap = np.mean([abs(s - m.score) for s, m in zip(marks, landmarks, strict=True)])
            dist = gap + META_WEIGHT * float(np.sqrt(((self.meta[j] - q) ** 2).sum()))
            rows.append((dist, target - float(np.mean(marks))))
        if len(rows) < 3:
            return None
        rows.sort(key=lambda r: r[0])
        diffs = np.array([r[1] for r in rows[:K]])
        level = float(np.mean([m.score for m in landmarks]))
        var = float(diffs.var(ddof=1)) * (1.0 + 1.0 / len(diffs)) + 1e-6
        return level + float(diffs.mean()), var


def combine(
    prior_mean: float, prior_var: float, est: tuple[float, float] | None
) -> tuple[float, float]:
    """Precision-weighted combination of the prior and a landmark estimate (mean, var)."""
    if est is None:
        return prior_mean, prior_var
    m, v = est
    w = 1.0 / prior_var + 1.0 / v
    return (prior_mean / prior_var + m / v) / w, 1.0 / w


def dataset_scale(z: Sequence[float], strength: float = PRIOR_STRENGTH) -> float:
    """Per-data-set factor on the prior's std from the standardised residuals ``z`` of the
    completed runs there: ``sqrt((strength + sum z^2) / (strength + n))``, i.e. shrunk toward
    the global scale (1) by ``strength`` pseudo-runs, kept in [1, 3]: a data set where the
    prior erred gets wider intervals; a few good answers do not make it narrower than the
    global calibration."""
    z = np.asarray(list(z), float)
    z = z[np.isfinite(z)]
    c2 = (strength + float((z**2).sum())) / (strength + len(z))
    return float(np.clip(np.sqrt(c2), 1.0, 3.0))


def adjust(
    table: LandmarkTable,
    prior_mean: float,
    prior_std: float,
    key: str,
    log2_size: float,
    meta: np.ndarray,
    landmarks: Sequence[Landmark],
    z: Sequence[float],
    dataset: str = "",
) -> tuple[float, float]:
    """The answer for one run given the landmarks on its data set: the mean combined with
    the landmark estimate (:func:`combine`), the std the prior's times
    :func:`dataset_scale` (the combination's smaller variance is not used: the landmark
    estimates of one data set share their error, and trusting it made 90 % intervals
    cover 0.80 on held-out data sets)."""
    if not landmarks:
        return prior_mean, prior_std
    est = table.estimate(key, log2_size, meta, landmarks, dataset)
    mean, _ = combine(prior_mean, prior_std**2, est)
    return mean, prior_std * dataset_scale(z)


def level_shift(residuals: Sequence[float], shared: float = SHARED) -> float:
    """Posterior mean of a data set's offset ``delta`` from the prior, given the residuals
    ``r_i = delta + e_i`` of its completed runs, where ``shared`` is the fraction of the
    prior's error variance that all learners of a data set share:
    ``sum(r) / (n + (1 - shared) / shared)``."""
    r = np.asarray(list(residuals), float)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return 0.0
    return float(r.sum() / (len(r) + (1.0 - shared) / shared))


class CampaignLandmarks:
    """The landmarks of a campaign: its completed runs, by data set, with their residuals
    under the prior; applied to every answer of the prior on those data sets.

    Args:
        mode: ``"level"`` (default): every learner's mean on the data set moves by
            :func:`level_shift` of the landmarks' residuals (the order of the learners is
            the prior's); ``"neighbours"``: each learner's mean is combined with the
            :class:`LandmarkTable` estimate (:func:`adjust`); ``"off"``: none. Either way the
            std is scaled by :func:`dataset_scale`, except ``"off"``.
    """

    MODES = ("level", "neighbours", "off")

    def __init__(self, mode: str = "level") -> None:
        if mode not in self.MODES:
            raise ValueError(f"landmark mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.marks: dict[str, list[Landmark]] = {}
        self.z: dict[str, list[float]] = {}
        self.r: dict[str, list[float]] = {}
        self._table: LandmarkTable | None = None

    def __bool__(self) -> bool:
        return bool(self.marks) and self.mode != "off"

    def clear(self) -> None:
        self.marks, self.z, self.r = {}, {}, {}

    def fit(
        self,
        predictor: Any,
        records: Sequence[RunRecord],
        scores: Sequence[float],
        mean: Tensor,
        std: Tensor,
    ) -> None:
        """Take ``n`` completed runs as landmarks (``mean``/``std``: the prior's ``n``
        moments of their first target, before any landmark)."""
        self.clear()
        if predictor.bank is None:
            return
        keys, _, pos = predictor._bank_keys(records)
        for i, (r, v) in enumerate(zip(records, scores, strict=True)):
            mark = Landmark(keys[i], float(pos[i, -1]), float(v))
            self.marks.setdefault(r.dataset, []).append(mark)
            z = (float(v) - float(mean[i])) / max(float(std[i]), 1e-9)
            self.z.setdefault(r.dataset, []).append(z)
            self.r.setdefault(r.dataset, []).append(float(v) - float(mean[i]))

    def apply(
        self, predictor: Any, records: Sequence[RunRecord], mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The prior's ``n x t`` moments with the first target adjusted on the data sets
        that have landmarks (:func:`adjust`; constant shifts and scales, so still
        differentiable where the moments are)."""
        if not self or predictor.bank is None:
            return mean, std
        if self.mode == "level":
            shift, scale = torch.zeros_like(mean), torch.ones_like(std)
            per = {
                d: (level_shift(self.r[d]), dataset_scale(self.z[d]))
                for d in {r.dataset for r in records}
                if d in self.marks
            }
            by_row = [per.get(r.dataset, (0.0, 1.0)) for r in records]
            if per:
                own = self._own_shifts(predictor, records, [b[0] for b in by_row])
                shift[:, 0] = torch.tensor(
                    [b[0] + o for b, o in zip(by_row, own, strict=True)], dtype=shift.dtype
                )
                scale[:, 0] = torch.tensor([b[1] for b in by_row], dtype=scale.dtype)
            return mean + shift, std * scale
        if self._table is None:
            self._table = LandmarkTable(predictor.bank)
        keys, _, pos = predictor._bank_keys(records)
        shift, scale = torch.zeros_like(mean), torch.ones_like(std)
        for i, r in enumerate(records):
            marks = self.marks.get(r.dataset)
            if not marks:
                continue
            m0, s0 = float(mean[i, 0].detach()), float(std[i, 0].detach())
            m1, s1 = adjust(
                self._table,
                m0,
                s0,
                keys[i],
                float(pos[i, -1]),
                pos[i, :-1],
                marks,
                self.z[r.dataset],
                r.dataset,
            )
            shift[i, 0], scale[i, 0] = m1 - m0, s1 / max(s0, 1e-12)
        return mean + shift.detach(), std * scale.detach()

    def _own_shifts(
        self, predictor: Any, records: Sequence[RunRecord], levels: Sequence[float]
    ) -> list[float]:
        """Per record: its learner's own residual beyond the data set's level, at the
        learner's nearest landmark size, times :func:`own_weight` (0 without one)."""
        keys, _, pos = predictor._bank_keys(records)
        own: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for d, marks in self.marks.items():
            for m, res in zip(marks, self.r.get(d, []), strict=True):
                own.setdefault((d, m.key), []).append((m.log2_size, res))
        out = []
        for i, r in enumerate(records):
            found = own.get((r.dataset, keys[i]))
            if not found:
                out.append(0.0)
                continue
            size = float(pos[i, -1])
            at, res = min(found, key=lambda p: abs(p[0] - size))
            out.append(own_weight(at - size) * (res - levels[i]))
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON form (saved with the world model)."""
        return {
            "marks": {d: [[m.key, m.log2_size, m.score] for m in v] for d, v in self.marks.items()},
            "z": self.z,
            "r": self.r,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignLandmarks:
        """Inverse of :meth:`to_json`."""
        out = cls(str(data.get("mode", "level")))
        out.r = {d: [float(v) for v in r] for d, r in data.get("r", {}).items()}
        out.marks = {
            d: [Landmark(str(k), float(a), float(v)) for k, a, v in marks]
            for d, marks in data.get("marks", {}).items()
        }
        out.z = {d: [float(z) for z in v] for d, v in data.get("z", {}).items()}
        return out


__all__ = [
    "K",
    "OWN_DECAY",
    "CampaignLandmarks",
    "Landmark",
    "LandmarkTable",
    "adjust",
    "combine",
    "dataset_scale",
    "level_shift",
]
