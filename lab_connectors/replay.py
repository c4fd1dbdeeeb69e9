"""The replay connector: a recorded data set of runs acts as the lab.

An experiment gets the recorded outcome and is charged the recorded cost (the run's measured
train time); an experiment that is not in the record comes back as a ``FAILED`` observation
that says what was asked and what the record holds. LCDB through this connector gives
realistic, reproducible campaigns with real costs and no compute.

Parameters map to records by name: ``learner_param``, ``dataset_param`` and
``anchor_param`` (or fixed ``learner`` / ``dataset`` / ``anchor``). Learner names match with
or without their module path (``RandomForestClassifier`` is
``sklearn.ensemble.RandomForestClassifier``).

Each submitted experiment leaves ``<workdir>/<id>.json`` (the handle's state and, once
finished, its observation), so a new instance picks up where a crashed one left off.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, ClassVar

from sciwm.connector import Connector, Handle
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.lcdb import RunDataError
from sciwm.lcdb.learners import short_learner

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_KNOWN = (
    "data",
    "metric",
    "outcome",
    "learner_param",
    "dataset_param",
    "anchor_param",
    "learner",
    "dataset",
    "anchor",
    "snap",
    "curve",
    "time_scale",
    "parallelism",
    "time_outcome",
)


class ReplayConnector(Connector):
    """Answers experiments from a recorded run table.

    Args:
        workdir: Directory for per-experiment state files.
        data: ``"lcdb"`` (default; LCDB's run table from :mod:`sciwm.lcdb.cache`) or a CSV
            file with columns ``dataset, learner, anchor, score, train_time``.
        metric: LCDB metric (``accuracy``, ``auc``, ``f1``, ``logloss``).
        outcome: Name of the outcome reported (default ``"accuracy"``).
        learner_param / dataset_param / anchor_param: Parameter names holding them.
        learner / dataset / anchor: Fixed values when no parameter holds them.
        snap: ``False`` (default): an anchor not recorded fails; ``True``: the largest
            recorded anchor at or below the requested one is used (reported in metadata).
        curve: ``False`` (default): a run is the one fit at its training size, charged that
            fit's train time. ``True``: a run walks up its learning curve, fitting at every
            recorded size up to its own, and is charged the fits it took; with ``time_scale``
            the points arrive one by one (:meth:`partial`), and a cancelled run is charged
            the fits done by then.
        time_scale: Seconds of real waiting per recorded second (0: answers at once).
        time_outcome: Also report the recorded train time as this outcome (e.g.
            ``"train_time"``, for a campaign that trades accuracy against time); default:
            the train time is the cost only.
        parallelism: What :meth:`capacity` reports.
    """

    name: ClassVar[str] = "replay"

    def __init__(self, workdir: str | Path, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(_KNOWN))
        if unknown:
            raise ConnectorError(
                f"unknown setting(s) {unknown} for the replay connector; known: {list(_KNOWN)}"
            )
        super().__init__(workdir, **settings)
        self.outcome = str(settings.get("outcome", "accuracy"))
        self.params = {
            k: settings.get(f"{k}_param", default)
            for k, default in (("learner", "learner"), ("dataset", "dataset"), ("anchor", None))
        }
        self.fixed = {k: settings.get(k) for k in ("learner", "dataset", "anchor")}
        if self.params["anchor"] is None and self.fixed["anchor"] is None:
            self.params["anchor"] = "anchor"
        self.snap = bool(settings.get("snap", False))
        self.time_outcome = settings.get("time_outcome")
        if self.time_outcome is not None and (
            not isinstance(self.time_outcome, str) or self.time_outcome == self.outcome
        ):
            raise ConnectorError(
                f"replay setting time_outcome must be an outcome name other than "
                f"{self.outcome!r}, got {self.time_outcome!r}"
            )
        self.curve = bool(settings.get("curve", False))
        self.time_scale = float(settings.get("time_scale", 0.0))
        if not (math.isfinite(self.time_scale) and self.time_scale >= 0):
            raise ConnectorError(f"replay setting time_scale must be >= 0, got {self.time_scale}")
        self._table = self._load(
            settings.get("data", "lcdb"), str(settings.get("metric", "accuracy"))
        )

    @staticmethod
    def _load(data: str, metric: str) -> dict[tuple[str, str], dict[int, tuple[float, float]]]:
        import pandas as pd  # lazily: the connector's module stays light to import

        from sciwm.lcdb.cache import lcdb_runs
        from sciwm.lcdb.runs import check_runs

        try:
            if data == "lcdb":
                runs = lcdb_runs(metric)
            else:
                path = Path(data)
                if not path.is_file():
                    raise ConnectorError(f"replay data file {path} does not exist")
                runs = pd.read_csv(path)
                check_runs(runs, str(path))
        except RunDataError as exc:
            raise ConnectorError(f"replay connector: {exc}") from exc
        table: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
        for r in runs.itertuples():
            key = (str(r.dataset), short_learner(r.learner))
            table.setdefault(key, {})[int(r.anchor)] = (float(r.score), float(r.train_time))
        return table

    # -- lookup --------------------------------------------------------------------------------
    def _value(self, experiment: Experiment, role: str) -> Any:
        name = self.params[role]
        if name is not None and name in experiment.parameters:
            return experiment.parameters[name]
        if self.fixed[role] is not None:
            return self.fixed[role]
        raise KeyError(
            f"experiment has no parameter {name!r} for the {role} and no fixed {role} is set"
        )

    def lookup(self, experiment: Experiment) -> Observation:
        """The recorded observation of ``experiment`` (``FAILED`` when not recorded)."""
        try:
            learner = short_learner(self._value(experiment, "learner"))
            dataset = str(self._value(experiment, "dataset"))
            anchor = int(round(float(self._value(experiment, "anchor"))))
        except (KeyError, TypeError, ValueError) as exc:
            return Observation.failed(experiment.id, f"replay: cannot map the parameters: {exc}")
        curve = self._table.get((dataset, learner))
        if curve is None:
            learners = sorted({k[1] for k in self._table if k[0] == dataset})
            hint = f"learners recorded on it: {learners}" if learners else "no such data set"
            return Observation.failed(
                experiment.id,
                f"replay: no recorded run of learner {learner!r} on data set {dataset!r} ({hint})",
            )
        meta: dict[str, Any] = {"dataset": dataset, "learner": learner, "anchor": anchor}
        if anchor not in curve:
            below = [a for a in curve if a <= anchor]
            if not (self.snap and below):
                return Observation.failed(
                    experiment.id,
                    f"replay: learner {learner!r} on {dataset!r} has no record at training "
                    f"size {anchor}; recorded sizes: {sorted(curve)} (or set snap = true)",
                )
            meta["snapped_to"] = anchor = max(below)
        score, cost = curve[anchor]
        if self.curve:
            points, total = [], 0.0
            for a in sorted(k for k in curve if k <= anchor):
                total += curve[a][1]
                points.append({"anchor": a, "score": curve[a][0], "cost": total})
            meta["curve"], cost = points, total
        outcomes = {self.outcome: score}
        if self.time_outcome is not None:
            outcomes[self.time_outcome] = cost
        return Observation(experiment.id, Status.COMPLETED, outcomes, cost=cost, metadata=meta)

    def resolve(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` with the training size snapped to the recorded one it would use."""
        out = dict(parameters)
        name = self.params["anchor"]
        if not self.snap or name is None or name not in out:
            return out
        probe = Experiment("probe", "probe", 0, out)
        try:
            curve = self._table.get(
                (str(self._value(probe, "dataset")), short_learner(self._value(probe, "learner")))
            )
            anchor = int(round(float(out[name])))
        except (KeyError, TypeError, ValueError):
            return out
        below = [a for a in (curve or {}) if a <= anchor]
        if below:
            out[name] = max(below)
        return out

    # -- the contract --------------------------------------------------------------------------
    def _file(self, experiment_id: str) -> Path:
        if not _SAFE_ID.fullmatch(experiment_id):
            raise ConnectorError(f"experiment id {experiment_id!r} cannot name a file")
        return self.workdir / f"{experiment_id}.json"

    def _write(self, path: Path, state: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def submit(self, experiment: Experiment) -> Handle:
        path = self._file(experiment.id)
        handle = {"connector": "replay", "experiment_id": experiment.id}
        if path.is_file():
            return handle
        obs = self.lookup(experiment)
        cap = experiment.max_cost
        if cap is not None and obs.cost is not None and obs.cost > cap:  # as a real run would be
            obs = Observation.failed(
                experiment.id,
                f"replay: the recorded run costs {obs.cost:.4g} s, more than this experiment's "
                f"budget cap max_cost={cap:.4g}; it was stopped at the cap",
                cost=cap,
                metadata=obs.metadata,
            )
        now = time.time()
        ready = now + self.time_scale * (obs.cost or 0.0)
        obs = Observation(
            obs.experiment_id,
            obs.status,
            obs.outcomes,
            obs.cost,
            now,
            now + (obs.cost or 0.0),
            obs.error,
            obs.metadata,
        )
        self._write(path, {"ready_at": ready, "observation": obs.to_dict(), "runs": 1})
        return handle

    def _state(self, handle: Handle) -> tuple[Path, dict[str, Any]]:
        path = self._file(str(handle.get("experiment_id", "")))
        if not path.is_file():
            raise ConnectorError(f"replay knows no experiment {handle!r}; submit it first")
        return path, json.loads(path.read_text())

    def poll(self, handle: Handle) -> Status:
        _, state = self._state(handle)
        if state.get("cancelled"):
            return Status.CANCELLED
        if time.time() < state["ready_at"]:
            return Status.RUNNING
        return Status(state["observation"]["status"])

    def fetch(self, handle: Handle) -> Observation:
        _, state = self._state(handle)
        obs = Observation.from_dict(state["observation"])
        if state.get("cancelled"):
            return Observation(
                obs.experiment_id,
                Status.CANCELLED,
                cost=state.get("cancelled_cost"),
                started_at=obs.started_at,
                finished_at=state["ready_at"],
                error="cancelled",
                metadata={"curve": state.get("cancelled_curve", [])},
            )
        if time.time() < state["ready_at"]:
            raise ConnectorError(f"experiment {obs.experiment_id} has not finished yet")
        return obs

    def cancel(self, handle: Handle) -> None:
        path, state = self._state(handle)
        if time.time() < state["ready_at"] and not state.get("cancelled"):
            obs = state["observation"]
            spent = (time.time() - float(obs["started_at"])) / max(self.time_scale, 1e-12)
            state["cancelled"] = True
            state["cancelled_cost"] = min(float(obs["cost"] or 0.0), max(0.0, spent))
            state["cancelled_curve"] = self.partial(handle)
            state["ready_at"] = time.time()
            self._write(path, state)

    def partial(self, handle: Handle) -> list[dict[str, Any]]:
        """The learning-curve points a running ``curve = true`` run has reached so far."""
        _, state = self._state(handle)
        obs = state["observation"]
        if not self.curve or state.get("cancelled") or self.params["anchor"] is None:
            return []
        elapsed = (time.time() - float(obs["started_at"])) / max(self.time_scale, 1e-12)
        return [
            {
                "fidelity": {self.params["anchor"]: p["anchor"]},
                "outcomes": {self.outcome: p["score"]},
                "cost": p["cost"],
            }
            for p in obs.get("metadata", {}).get("curve", [])
            if p["cost"] <= elapsed
        ]

    def times_run(self, experiment_id: str) -> int:
        """How many times an experiment was really answered (1 or 0)."""
        path = self._file(experiment_id)
        return int(json.loads(path.read_text())["runs"]) if path.is_file() else 0
