"""Real experiments used by ``sciwm demo``: training scikit-learn models on bundled data.

Each function is an ordinary callable that the local connector runs in a separate process.
It trains for real and returns its measured outcomes; the connector measures its wall time
as the cost.
"""

from __future__ import annotations

import os


def train_digits_hgb(
    learning_rate: float,
    max_iter: int,
    max_leaf_nodes: int,
    l2_regularization: float,
    seed: int = 0,
) -> dict[str, float]:
    """Cross-validated accuracy of a histogram gradient-boosting classifier on *digits*.

    The data set (1,797 8x8 images of handwritten digits, 10 classes) ships with
    scikit-learn. Training cost grows with ``max_iter`` and ``max_leaf_nodes``.

    Args:
        learning_rate: Shrinkage of each tree, e.g. 0.01-1.
        max_iter: Number of boosting iterations (trees per class).
        max_leaf_nodes: Leaves per tree.
        l2_regularization: L2 penalty on leaf values.
        seed: Seed of the cross-validation split and the model.

    Returns:
        ``{"accuracy": mean 3-fold accuracy, "accuracy_std": its spread over folds}``.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y = load_digits(return_X_y=True)
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_iter=int(max_iter),
        max_leaf_nodes=int(max_leaf_nodes),
        l2_regularization=l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    scores = cross_val_score(model, X, y, cv=cv)
    return {"accuracy": float(scores.mean()), "accuracy_std": float(scores.std())}
