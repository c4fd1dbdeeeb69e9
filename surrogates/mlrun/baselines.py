"""Baselines for predicting a run's final metric and log train time on unseen data sets.

Each baseline is fitted on the final-anchor table of the training data sets and predicts a
Gaussian ``(mean, std)`` per test row, for ``score`` and ``log_time`` alike:

- :func:`learner_mean`: each learner's mean (and spread) over the training data sets;
- :func:`knn_datasets`: the same learner on the ``k`` nearest training data sets by
  standardised meta-features;
- :func:`gp_meta`: one exact GP per learner on standardised meta-features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from sciwm.lcdb.meta import meta_vector

Prediction = tuple[np.ndarray, np.ndarray]  # (mean, std), each n x 2 [score, log_time]
MIN_STD = 1e-3


def _targets(frame: pd.DataFrame) -> np.ndarray:
    return np.c_[frame["score"].to_numpy(float), np.log(frame["train_time"].to_numpy(float))]


def learner_mean(train: pd.DataFrame, test: pd.DataFrame) -> Prediction:
    """Per-learner mean and standard deviation over the training data sets."""
    y = pd.DataFrame(_targets(train), columns=["s", "t"]).assign(learner=train["learner"].values)
    stats = y.groupby("learner").agg(["mean", "std"])
    glob = y[["s", "t"]].agg(["mean", "std"])
    mean = np.zeros((len(test), 2))
    std = np.zeros((len(test), 2))
    for i, learner in enumerate(test["learner"]):
        for j, col in enumerate(("s", "t")):
            if learner in stats.index:
                mean[i, j] = stats.loc[learner, (col, "mean")]
                std[i, j] = stats.loc[learner, (col, "std")]
            else:
                mean[i, j], std[i, j] = glob.loc["mean", col], glob.loc["std", col]
    return mean, np.nan_to_num(std, nan=0.1).clip(MIN_STD)


def _meta_matrix(frame: pd.DataFrame, metas: dict[str, dict[str, float]]) -> np.ndarray:
    rows = [meta_vector(metas[d]) for d in frame["dataset"]]
    return np.asarray(rows, float)


def knn_datasets(
    train: pd.DataFrame, test: pd.DataFrame, metas: dict[str, dict[str, float]], k: int = 5
) -> Prediction:
    """Mean and spread of the same learner on the ``k`` nearest training data sets."""
    names = sorted(train["dataset"].unique())
    M = np.asarray([meta_vector(metas[n]) for n in names])
    mu, sd = M.mean(0), M.std(0) + 1e-9
    Ms = (M - mu) / sd
    table = {(r.dataset, r.learner): (r.score, np.log(r.train_time)) for r in train.itertuples()}
    fallback_mean, fallback_std = learner_mean(train, test)
    mean, std = fallback_mean.copy(), fallback_std.copy()
    for i, r in enumerate(test.itertuples()):
        q = (np.asarray(meta_vector(metas[r.dataset])) - mu) / sd
        order = np.argsort(((Ms - q) ** 2).sum(1))
        vals = [table[(names[j], r.learner)] for j in order if (names[j], r.learner) in table][:k]
        if len(vals) >= 2:
            v = np.asarray(vals)
            mean[i], std[i] = v.mean(0), v.std(0, ddof=1).clip(MIN_STD)
    return mean, std


def gp_meta(
    train: pd.DataFrame, test: pd.DataFrame, metas: dict[str, dict[str, float]]
) -> Prediction:
    """One exact GP (botorch ``SingleTaskGP``) per learner and target on meta-features."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    Xtr, Xte = _meta_matrix(train, metas), _meta_matrix(test, metas)
    lo, hi = Xtr.min(0), Xtr.max(0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    Xtr, Xte = (Xtr - lo) / scale, (Xte - lo) / scale
    Y = _targets(train)
    mean, std = learner_mean(train, test)
    for learner in test["learner"].unique():
        tr = (train["learner"] == learner).to_numpy()
        te = (test["learner"] == learner).to_numpy()
        if tr.sum() < 5:
            continue
        X = torch.tensor(Xtr[tr], dtype=torch.double)
        for j in range(2):
            y = torch.tensor(Y[tr, j : j + 1], dtype=torch.double)
            model = SingleTaskGP(X, y, outcome_transform=Standardize(m=1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                except Exception:  # noqa: BLE001 - keep the learner-mean fallback
                    continue
            with torch.no_grad():
                X_te = torch.tensor(Xte[te], dtype=torch.double)
                post = model.posterior(X_te, observation_noise=True)
                mean[te, j] = post.mean.squeeze(-1).numpy()
                std[te, j] = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy().clip(MIN_STD)
    return mean, std
