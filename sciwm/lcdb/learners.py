"""LCDB's learners: one vocabulary for the connectors that run them and the models that describe
them.

LCDB names 20 scikit-learn classifiers by their class name, except the four SVC kernels
(``SVC_rbf`` ...). :data:`LEARNERS` maps each name to the class that trains it, the constructor
arguments that make it LCDB's learner, and a plain-language note (what the ML-run world model's
language model reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Learner:
    """One LCDB learner.

    Attributes:
        path: Dotted path of the scikit-learn class, e.g. ``sklearn.svm.SVC``.
        kwargs: Constructor arguments that make it LCDB's learner (e.g. ``kernel="rbf"``).
        note: What it is, in plain language.
    """

    path: str
    note: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _svc(kernel: str, what: str) -> Learner:
    return Learner(
        "sklearn.svm.SVC", f"support vector machine classifier with {what}", {"kernel": kernel}
    )


#: LCDB's learner names -> :class:`Learner`.
LEARNERS: dict[str, Learner] = {
    "SVC_linear": _svc("linear", "a linear kernel"),
    "SVC_poly": _svc("poly", "a polynomial kernel"),
    "SVC_rbf": _svc("rbf", "an RBF (Gaussian) kernel"),
    "SVC_sigmoid": _svc("sigmoid", "a sigmoid kernel"),
    **{
        path.rsplit(".", 1)[-1]: Learner(path, note)
        for path, note in (
            (
                "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
                "linear discriminant analysis, a linear generative classifier",
            ),
            (
                "sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis",
                "quadratic discriminant analysis, per-class Gaussians",
            ),
            (
                "sklearn.ensemble.ExtraTreesClassifier",
                "extremely randomised trees, an ensemble of random decision trees",
            ),
            ("sklearn.ensemble.GradientBoostingClassifier", "gradient boosted decision trees"),
            (
                "sklearn.ensemble.RandomForestClassifier",
                "random forest, a bagged ensemble of decision trees",
            ),
            ("sklearn.linear_model.LogisticRegression", "logistic regression, a linear model"),
            (
                "sklearn.linear_model.PassiveAggressiveClassifier",
                "passive-aggressive online linear classifier",
            ),
            ("sklearn.linear_model.Perceptron", "perceptron, a single-layer linear classifier"),
            (
                "sklearn.linear_model.RidgeClassifier",
                "ridge regression used as a linear classifier",
            ),
            (
                "sklearn.linear_model.SGDClassifier",
                "linear classifier trained with stochastic gradient descent",
            ),
            ("sklearn.naive_bayes.BernoulliNB", "Bernoulli naive Bayes on binarised features"),
            ("sklearn.naive_bayes.MultinomialNB", "multinomial naive Bayes on count features"),
            ("sklearn.neighbors.KNeighborsClassifier", "k-nearest neighbours classifier"),
            ("sklearn.neural_network.MLPClassifier", "multi-layer perceptron neural network"),
            ("sklearn.tree.DecisionTreeClassifier", "single decision tree"),
            ("sklearn.tree.ExtraTreeClassifier", "single extremely randomised tree"),
        )
    },
}


def short_learner(name: object) -> str:
    """``sklearn.ensemble.RandomForestClassifier`` -> ``RandomForestClassifier``."""
    return str(name).rsplit(".", 1)[-1]


def lcdb_learner(name: object) -> Learner | None:
    """The LCDB learner ``name`` stands for (with or without its module path), or ``None``."""
    return LEARNERS.get(short_learner(name))


__all__ = ["LEARNERS", "Learner", "lcdb_learner", "short_learner"]
