"""What the same learner did on the nearest training data sets: stacking features for the heads.

For a run (learner ``L`` on data set ``D`` at size ``n``) the features summarise the ``k``
training runs of ``L`` on *other* data sets that are nearest to ``(D, n)`` in standardised
meta-features and log size: their mean targets, their mean targets relative to the level of
their own data set (target minus the mean of all learners there at that size), and their mean
rank among the learners there (0 = worst, 1 = best). The relative features say how ``L``
tends to rank on similar data, which is what a within-data-set ranking needs; the data set's
own level comes from the heads. A run's own data set is always left out, so the features of
a training run are computed exactly as those of a run on an unseen data set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch


class NeighbourBank:
    """Training runs indexed for k-nearest-data-set look-ups.

    Args:
        learners: ``n`` learner keys (learner name plus settings).
        datasets: ``n`` data set names.
        position: A ``n x p`` array: numeric position of each run (meta-features, log size).
        y: A ``n x t`` array of targets (NaN = missing).
        k: Number of neighbours.
        base: ``n`` last observed scores of the runs' partial curves (NaN: none); the bank
            then also reports the neighbours' mean gain ``y[:, 0] - base`` from there.
    """

    def __init__(
        self,
        learners: Sequence[str],
        datasets: Sequence[str],
        position: np.ndarray,
        y: np.ndarray,
        k: int = 5,
        base: np.ndarray | None = None,
    ) -> None:
        self.k = int(k)
        self.base = np.full(len(y), np.nan) if base is None else np.asarray(base, float)
        self.learners = np.asarray(learners, dtype=object)
        self.datasets = np.asarray(datasets, dtype=object)
        self.mu = position.mean(0)
        self.sd = position.std(0) + 1e-9
        self.position = (position - self.mu) / self.sd
        self.y = np.asarray(y, float)
        self.n_targets = self.y.shape[1]
        frame = pd.DataFrame(self.y).assign(_d=self.datasets, _p=position[:, -1])
        groups = frame.groupby(["_d", "_p"], sort=False)
        cols = list(range(self.n_targets))
        level = groups[cols].transform("mean").to_numpy(float)
        self.relative = self.y - level
        size = groups[cols].transform("count").to_numpy(float)
        rank = groups[cols].rank(method="average").to_numpy(float)
        self.rank = np.where(size > 1, (rank - 1) / np.maximum(size - 1, 1), 0.5)
        self.gain = self.y[:, 0] - self.base
        self.fill = np.r_[np.nanmean(self.y, 0), np.zeros(self.n_targets), 0.5, 0.0]
        self.index = {key: np.flatnonzero(self.learners == key) for key in set(self.learners)}
        # Data sets as integer codes: the look-up compares m x n codes, not m x n strings.
        self._codes = {name: i for i, name in enumerate(dict.fromkeys(self.datasets))}
        self.dataset_codes = np.array([self._codes[d] for d in self.datasets], dtype=np.int64)
        # Each learner's runs, gathered once: a look-up reads them contiguously.
        self._key_position = {key: self.position[rows] for key, rows in self.index.items()}
        self._key_codes = {key: self.dataset_codes[rows] for key, rows in self.index.items()}

    @property
    def width(self) -> int:
        """Number of features per run: ``2 t + 3``."""
        return 2 * self.n_targets + 3

    def features(
        self, learners: Sequence[str], datasets: Sequence[str], position: np.ndarray
    ) -> np.ndarray:
        """``m x (2 t + 3)`` features: mean target (``t``), mean relative target (``t``), mean
        rank of the first target, mean gain from the last observed score (0 when none is
        known), and the fraction of ``k`` neighbours found.

        Args:
            learners: ``m`` learner keys; datasets: ``m`` data set names (left out of their
                own look-up); position: ``m x p`` positions (raw, as given to the bank).
        """
        m, t = len(learners), self.n_targets
        out = np.tile(np.r_[self.fill, 0.0], (m, 1)).astype(float)
        q = (np.asarray(position, float) - self.mu) / self.sd
        learners = np.asarray(learners, dtype=object)
        codes = np.array([self._codes.get(d, -1) for d in datasets], dtype=np.int64)
        for key in set(learners):
            rows = np.flatnonzero(learners == key)
            bank = self.index.get(key)
            if bank is None or len(bank) == 0:
                continue
            kk = min(self.k, len(bank))
            near, d2 = self._nearest(key, q[rows], codes[rows], kk)
            ok = np.isfinite(d2)
            pick = bank[near]
            w = ok[..., None].astype(float)
            cnt = w.sum(1)
            has = cnt[:, 0] > 0
            for j, block in enumerate((self.y, self.relative)):
                vals = np.nan_to_num(block[pick]) * w
                wn = w * ~np.isnan(block[pick])
                mean = vals.sum(1) / np.maximum(wn.sum(1), 1)
                out[rows[has], j * t : (j + 1) * t] = mean[has]
            r = (self.rank[pick][..., 0] * ok).sum(1) / np.maximum(cnt[:, 0], 1)
            out[rows[has], 2 * t] = r[has]
            gain = self.gain[pick]
            wg = ok & np.isfinite(gain)
            g = (np.nan_to_num(gain) * wg).sum(1) / np.maximum(wg.sum(1), 1)
            out[rows, 2 * t + 1] = g
            out[rows, 2 * t + 2] = cnt[:, 0] / self.k
        return out

    def _nearest(
        self, key: str, q: np.ndarray, own: np.ndarray, kk: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``kk`` runs of learner ``key`` nearest to each of ``r`` queries.

        Args:
            key: Learner key (in the bank).
            q: A ``r x p`` array of standardised query positions.
            own: ``r`` data set codes of the queries (their runs are left out: distance inf).
            kk: Neighbours per query (at most the learner's run count).

        Returns:
            ``(near, d2)``: two ``r x kk`` arrays, indices into the learner's runs and their
            squared distances (inf: no run there).

        When the queries share their data set and some coordinates (a campaign asks about
        one data set: its meta-features), the shared part of the distance is computed once
        per run and the runs are visited nearest-first by it: only a prefix long enough that
        no later run can come nearer (its shared part alone exceeds every query's
        ``kk``-th distance) costs ``r x`` (prefix) distances; the answer is the full search's.
        """
        pos, codes = self._key_position[key], self._key_codes[key]
        shared = (q == q[:1]).all(0)
        if not shared.any() or not (own == own[0]).all():
            d2 = ((q[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
            d2[own[:, None] == codes[None, :]] = np.inf
            near = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            return near, np.take_along_axis(d2, near, 1)
        common = ((q[0, shared] - pos[:, shared]) ** 2).sum(-1)
        common[codes == own[0]] = np.inf
        vary = np.flatnonzero(~shared)
        b = len(common)
        m = min(b, 16 * kk)
        while True:
            if m < b:  # the m runs nearest by the shared part, and the next one's
                order = np.argpartition(common, m)
                idx, bound = order[:m], common[order[m]]
            else:
                idx, bound = np.arange(b), np.inf
            d2 = np.broadcast_to(common[idx], (len(q), m)).copy()
            for j in vary:
                d2 += (q[:, j, None] - pos[None, idx, j]) ** 2
            near = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            d2_near = np.take_along_axis(d2, near, 1)
            if m == b or bound > d2_near.max():
                return idx[near], d2_near
            m = min(b, 4 * m)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors that rebuild the bank (names as UTF-8 bytes separated by NUL)."""
        return {
            "learners": _encode(self.learners),
            "datasets": _encode(self.datasets),
            "position": torch.from_numpy(self.position * self.sd + self.mu),
            "y": torch.from_numpy(self.y),
            "base": torch.from_numpy(self.base),
            "k": torch.tensor(self.k),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> NeighbourBank:
        """Inverse of :meth:`state`."""
        return cls(
            _decode(state["learners"]),
            _decode(state["datasets"]),
            state["position"].double().numpy(),
            state["y"].double().numpy(),
            int(state["k"]),
            state["base"].double().numpy(),
        )


def _encode(names: Sequence[str]) -> torch.Tensor:
    return torch.tensor(list("\0".join(map(str, names)).encode()), dtype=torch.uint8)


def _decode(blob: torch.Tensor) -> list[str]:
    return bytes(blob.tolist()).decode().split("\0")


__all__ = ["NeighbourBank"]
