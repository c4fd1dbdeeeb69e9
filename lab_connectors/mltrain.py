"""The mltrain connector: real training runs on this machine, with their learning curves.

Each experiment trains a learner (any of LCDB's 20 scikit-learn learners of
:data:`sciwm.lcdb.learners.LEARNERS` by LCDB's name or its class name, a dotted scikit-learn
class path, or ``TorchMLP``, a small torch network) on a data set that ships with
scikit-learn (``digits``, ``breast_cancer``, ``wine``, ``iris``) or a user's CSV, at the
training-set size the experiment asks for. It runs in a detached worker process (the local
connector's machinery) and walks up a learning curve: it trains at training sizes 16, 32,
64, ... and at the requested size, and after each it logs the test score

- to ``curve.jsonl`` in the experiment's directory, line by line while the run goes, and
- as the MLflow metric ``score`` with ``step`` = training size (plus ``train_time``), when a
  tracking URI is configured,

so a partial curve is visible before the run ends (:func:`read_curve`). The outcome is the
test score at the requested size; the cost is the run's training time in seconds, summed over
the curve (LCDB's train times are fit times too; scoring and start-up are not charged).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from lab_connectors.local import LocalConnector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment
from sciwm.lcdb.learners import LEARNERS, lcdb_learner

CONFIG_ENV = "SCIWM_MLTRAIN"
CURVE_FILE = "curve.jsonl"
BUILTIN_DATA = ("digits", "breast_cancer", "wine", "iris")

_OWN = (
    "startup_s",
    "data",
    "target_column",
    "test_fraction",
    "seed",
    "tracking_uri",
    "experiment_name",
    "learner_param",
    "anchor_param",
    "learner",
    "anchor",
    "outcome",
)


class MLTrainConnector(LocalConnector):
    """Trains real models in worker processes (see the module docstring).

    Args:
        workdir: Directory owned by the connector for this campaign.
        data: ``digits`` (default), ``breast_cancer``, ``wine``, ``iris`` or a CSV path.
        target_column: Label column of a CSV (default ``"target"``).
        test_fraction: Held-out fraction for the test score (default 0.2).
        seed: Seed of the split and the learners.
        tracking_uri: MLflow tracking URI for the curve metrics (default: none, or
            ``$MLFLOW_TRACKING_URI`` when set).
        experiment_name: MLflow experiment of the runs (default ``"sciwm-mltrain"``).
        learner_param / anchor_param: Parameter names of learner and training size
            (defaults ``"learner"`` and ``"train_size"``); other parameters are passed to
            the learner's constructor.
        learner / anchor: Fixed values when no parameter holds them (anchor: default all
            training rows).
        outcome: Outcome name of the final test score (default ``"accuracy"``).
        startup_s: Wall seconds allowed on top of an experiment's budget cap ``max_cost``
            before it is stopped (default 15): the cost charged is training time, while the
            worker also spends time starting Python and loading the data.
        **local: ``timeout_s``, ``parallelism``, ``python``, ``env``, ``grace_s`` as for the
            local connector.
    """

    name: ClassVar[str] = "mltrain"

    def __init__(self, workdir: str | Path, **settings: Any) -> None:
        own = {k: settings.pop(k) for k in list(settings) if k in _OWN}
        if "function" in settings:
            raise ConnectorError("the mltrain connector runs its own function; drop 'function'")
        data = str(own.get("data", "digits"))
        if data not in BUILTIN_DATA and not Path(data).is_file():
            raise ConnectorError(
                f"mltrain data {data!r} is neither one of {list(BUILTIN_DATA)} nor a CSV file"
            )
        frac = float(own.get("test_fraction", 0.2))
        if not 0.0 < frac < 1.0:
            raise ConnectorError(f"mltrain test_fraction must lie in (0, 1), got {frac}")
        learner = own.get("learner")
        if learner is not None:
            check_learner(str(learner))
        config = {
            "data": data if data in BUILTIN_DATA else str(Path(data).resolve()),
            "target_column": str(own.get("target_column", "target")),
            "test_fraction": frac,
            "seed": int(own.get("seed", 0)),
            "tracking_uri": own.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI"),
            "experiment_name": str(own.get("experiment_name", "sciwm-mltrain")),
            "learner_param": str(own.get("learner_param", "learner")),
            "anchor_param": str(own.get("anchor_param", "train_size")),
            "learner": learner,
            "anchor": own.get("anchor"),
            "outcome": str(own.get("outcome", "accuracy")),
        }
        env = dict(settings.pop("env", None) or {})
        env[CONFIG_ENV] = json.dumps(config)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.startup_s = float(own.get("startup_s", 15.0))
        if not self.startup_s >= 0:
            raise ConnectorError(f"mltrain startup_s must be >= 0, got {self.startup_s}")
        super().__init__(workdir, function="lab_connectors.mltrain:train_run", env=env, **settings)
        self.config = config

    def _experiment_record(self, experiment: Experiment) -> dict[str, Any]:
        """As the local connector's, with the wall limit ``min(timeout_s, startup_s + cap)``."""
        record = super()._experiment_record(experiment)
        if experiment.max_cost is not None:
            limit = min(self.timeout_s, self.startup_s + experiment.max_cost)
            if limit < self.timeout_s:
                record["timeout_s"] = limit
                record["timeout_reason"] = (
                    f"this experiment's budget cap max_cost={experiment.max_cost:g} s of "
                    f"training plus startup_s={self.startup_s:g}"
                )
            else:
                record["timeout_s"] = self.timeout_s
                record["timeout_reason"] = f"the connector's timeout_s={self.timeout_s:g}"
        return record

    def partial(self, handle: dict[str, Any]) -> list[dict[str, Any]]:
        """The learning curve a running run has logged so far (training sizes as fidelity)."""
        points, total = [], 0.0
        for p in read_curve(str(handle.get("dir", ""))):
            total += float(p.get("train_time", 0.0))
            points.append(
                {
                    "fidelity": {self.config["anchor_param"]: int(p["anchor"])},
                    "outcomes": {self.config["outcome"]: float(p["score"])},
                    "cost": total,
                }
            )
        return points


def check_learner(name: str) -> None:
    """Raise ``ValueError`` naming the known learners if ``name`` is not one."""
    if lcdb_learner(name) is not None or name == "TorchMLP" or name.startswith("sklearn."):
        return
    raise ValueError(
        f"unknown learner {name!r}; use one of {sorted(LEARNERS)}, 'TorchMLP' or a dotted "
        "scikit-learn class path"
    )


def read_curve(experiment_dir: str | Path) -> list[dict[str, float]]:
    """The learning curve logged so far by a run (possibly still going)."""
    path = Path(experiment_dir) / CURVE_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written
            break
    return out


def anchors_up_to(n: int, start: int = 16) -> list[int]:
    """Training sizes ``16, 32, ...`` below ``n``, then ``n``."""
    out, a = [], start
    while a < n:
        out.append(a)
        a *= 2
    return [*out, n]


def train_run(**parameters: Any) -> dict[str, Any]:
    """Worker entry point: train along a learning curve and return outcome and cost."""
    config = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    lp, ap = config.get("learner_param", "learner"), config.get("anchor_param", "train_size")
    learner = parameters.pop(lp, None) or config.get("learner")
    if learner is None:
        raise ValueError(f"no learner: give parameter {lp!r} or the connector's 'learner'")
    anchor = parameters.pop(ap, None) or config.get("anchor")
    check_learner(str(learner))
    X_tr, X_te, y_tr, y_te = _data(config)
    n = len(y_tr) if anchor is None else int(anchor)
    if not 2 <= n <= len(y_tr):
        raise ValueError(f"training size {n} is out of range: this data has {len(y_tr)} rows")
    exp_dir = Path(os.environ.get("SCIWM_EXPERIMENT_DIR", "."))
    logger = _MLflowCurve(config, os.environ.get("SCIWM_EXPERIMENT_ID", "run"), learner, n)
    total, score, fit_s = 0.0, float("nan"), 0.0
    try:
        with open(exp_dir / CURVE_FILE, "a") as fh:
            for a in anchors_up_to(n):
                if len(set(y_tr[:a].tolist())) < 2:
                    continue
                t0 = time.perf_counter()
                model = _build(str(learner), parameters, int(config.get("seed", 0)))
                model.fit(X_tr[:a], y_tr[:a])
                fit_s = time.perf_counter() - t0
                score = float(model.score(X_te, y_te))
                total += fit_s
                point = {"anchor": a, "score": score, "train_time": fit_s}
                fh.write(json.dumps(point) + "\n")
                fh.flush()
                logger.log(point)
    finally:
        logger.close()
    return {
        "outcomes": {config.get("outcome", "accuracy"): score, "train_time": fit_s},
        "cost": max(total, 1e-6),
    }


def _data(config: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    name = config.get("data", "digits")
    if name in BUILTIN_DATA:
        import sklearn.datasets as ds

        X, y = getattr(ds, f"load_{name}")(return_X_y=True)
    else:
        import pandas as pd

        frame = pd.read_csv(name)
        col = config.get("target_column", "target")
        if col not in frame.columns:
            raise ValueError(f"{name} has no label column {col!r}")
        y = frame.pop(col).to_numpy()
        X = frame.to_numpy(dtype=float)
    X = MinMaxScaler().fit_transform(np.asarray(X, float))  # MultinomialNB needs X >= 0
    return train_test_split(
        X,
        y,
        test_size=config.get("test_fraction", 0.2),
        random_state=config.get("seed", 0),
        stratify=y,
    )


def _build(learner: str, hyper: Mapping[str, Any], seed: int) -> Any:
    if learner == "TorchMLP":
        return TorchMLP(seed=seed, **hyper)
    import importlib
    import inspect

    known = lcdb_learner(learner)
    path, kwargs = (known.path, known.kwargs) if known else (learner, {})
    module, _, cls_name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = {**kwargs, **hyper}
    if "random_state" in inspect.signature(cls).parameters:
        kwargs.setdefault("random_state", seed)
    return cls(**kwargs)


class TorchMLP:
    """A small torch classifier with the scikit-learn ``fit``/``score`` interface.

    Args:
        hidden: Hidden width.
        epochs: Full-batch Adam epochs.
        lr: Learning rate.
        seed: Seed of the initialisation.
    """

    def __init__(self, hidden: int = 64, epochs: int = 100, lr: float = 0.01, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.seed = int(hidden), int(epochs), float(lr), seed

    def fit(self, X: Any, y: Any) -> TorchMLP:
        import numpy as np
        import torch

        torch.manual_seed(self.seed)
        self.classes_ = np.unique(y)
        target = torch.as_tensor(np.searchsorted(self.classes_, y))
        x = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, len(self.classes_)),
        )
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            loss = torch.nn.functional.cross_entropy(self.net(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return self

    def score(self, X: Any, y: Any) -> float:
        import numpy as np
        import torch

        with torch.no_grad():
            logits = self.net(torch.as_tensor(np.asarray(X), dtype=torch.float32))
        pred = self.classes_[logits.argmax(1).numpy()]
        return float((pred == np.asarray(y)).mean())


class _MLflowCurve:
    """Logs curve points to MLflow as they come (a no-op without a tracking URI)."""

    def __init__(self, config: Mapping[str, Any], run_name: str, learner: Any, n: int) -> None:
        self.mlflow = None
        uri = config.get("tracking_uri")
        if not uri:
            return
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(config.get("experiment_name", "sciwm-mltrain"))
        mlflow.start_run(run_name=run_name)
        mlflow.log_params({"learner": str(learner), "train_size": n, "data": config.get("data")})
        self.mlflow = mlflow

    def log(self, point: Mapping[str, float]) -> None:
        if self.mlflow is not None:
            step = int(point["anchor"])
            self.mlflow.log_metrics(
                {"score": point["score"], "train_time": point["train_time"]}, step=step
            )

    def close(self) -> None:
        if self.mlflow is not None:
            self.mlflow.end_run()
