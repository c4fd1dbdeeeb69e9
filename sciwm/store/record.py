"""How one real experiment maps to an MLflow run: the :class:`Record` and its tags.

Everything needed to resume lives in the run's tags, as JSON; values longer than an MLflow
tag holds are split over ``key``, ``key.1``, ... with ``key.parts`` giving the count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sciwm.errors import StoreError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import Estimate, Prediction

#: Longest string put in one MLflow tag; longer values are split over ``key``, ``key.1``, ...
CHUNK = 5000
#: Longest error text kept in the ``sciwm.error`` tag (the full text goes to error.txt).
ERROR_TAG_MAX = 2000


@dataclass
class Record:
    """One real experiment as the store knows it.

    Attributes:
        experiment: What was proposed.
        status: Where it stands (``PROPOSED`` until the connector handle is recorded).
        run_id: The MLflow run holding it.
        handle: The connector handle, once submitted.
        prediction: The world model's prediction made before dispatch, if any.
        observation: The result, once finished.
    """

    experiment: Experiment
    status: Status
    run_id: str
    handle: dict | None = None
    prediction: Prediction | None = None
    observation: Observation | None = None


def chunked(key: str, value: str, reset: bool = False) -> dict[str, str]:
    """Tags holding ``value`` in pieces of at most :data:`CHUNK` characters.

    ``key.parts`` is written when there is more than one piece, or always with ``reset``
    (so that an overwrite never leaves stale pieces counted).
    """
    pieces = [value[i : i + CHUNK] for i in range(0, len(value), CHUNK)] or [""]
    tags = {key: pieces[0]}
    tags.update({f"{key}.{i}": piece for i, piece in enumerate(pieces[1:], start=1)})
    if len(pieces) > 1 or reset:
        tags[f"{key}.parts"] = str(len(pieces))
    return tags


def unchunked(tags: Mapping[str, str], key: str) -> str:
    """Inverse of :func:`chunked` (``""`` when ``key`` is absent)."""
    parts = int(tags.get(f"{key}.parts", "1"))
    return tags.get(key, "") + "".join(tags.get(f"{key}.{i}", "") for i in range(1, parts))


def capped(observation: Observation) -> Observation:
    """The observation with its error text cut to what tags hold comfortably (20 kB)."""
    if observation.error and len(observation.error) > 4 * CHUNK:
        return replace(observation, error=observation.error[: 4 * CHUNK] + " ... (see error.txt)")
    return observation


#: Observation metadata key listing files to keep with the experiment's MLflow run.
ARTIFACTS_KEY = "artifacts"


def artifact_files(observation: Observation) -> tuple[list[Path], list[str]]:
    """Files an observation asks to keep as artifacts of its run.

    A connector lists them under ``metadata["artifacts"]`` (a path or a list of paths), e.g.
    the trajectory of a simulation.

    Returns:
        The existing files, and the listed paths that are not files (to report, not to fail:
        the observation itself must still be recorded).
    """
    listed = observation.metadata.get(ARTIFACTS_KEY) or []
    if isinstance(listed, str):
        listed = [listed]
    found, missing = [], []
    for item in listed:
        path = Path(str(item))
        (found if path.is_file() else missing).append(path if path.is_file() else str(item))
    return found, missing


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in metric keys replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def outcome_key(name: str) -> str:
    """Metric key of an outcome; ``outcome.`` is prefixed where it would clash with ours."""
    key = metric_key(name)
    return f"outcome.{key}" if key == "cost" or key.startswith("pred.") else key


def params_of(experiment: Experiment) -> dict[str, str]:
    """The experiment's parameter values as MLflow params."""
    return {k: str(v) for k, v in experiment.parameters.items()}


def prediction_metrics(prediction: Prediction | None) -> dict[str, float]:
    """``pred.<outcome>.mean/std/lower/upper``, ``pred.cost.mean/std/upper`` and
    ``pred.extrapolating`` (1.0 where the model answered outside its training conditions)."""
    if prediction is None:
        return {}
    out: dict[str, float] = {"pred.extrapolating": float(prediction.extrapolating)}
    for name, est in prediction.outcomes.items():
        for field in ("mean", "std", "lower", "upper"):
            out[f"pred.{metric_key(name)}.{field}"] = getattr(est, field)
    for field in ("mean", "std", "upper"):
        out[f"pred.cost.{field}"] = getattr(prediction.cost, field)
    return out


def prediction_from_dict(data: Mapping[str, Any]) -> Prediction:
    """Inverse of :meth:`sciwm.prediction.Prediction.to_dict`."""
    return Prediction(
        {k: Estimate(**v) for k, v in data["outcomes"].items()},
        Estimate(**data["cost"]),
        bool(data.get("extrapolating", False)),
        list(data.get("notes", [])),
        data.get("extrapolating_reason"),
    )


_RANK = {Status.PROPOSED: 0, Status.RUNNING: 1}


def preferred_run(runs: list[Any]) -> Any:
    """Among runs of one experiment id (duplicates only after a race), the most advanced."""

    def rank(run: Any) -> tuple[int, int]:
        status = Status(run.data.tags.get("sciwm.status", "proposed"))
        return (-_RANK.get(status, 2), run.info.start_time or 0)

    return min(runs, key=rank)


def record_from_run(run: Any) -> Record:
    """Rebuild a record from the tags of its run."""
    tags = run.data.tags
    try:
        experiment = Experiment.from_dict(json.loads(unchunked(tags, "sciwm.experiment")))
        handle = tags.get("sciwm.handle")
        prediction = tags.get("sciwm.prediction")
        observation = tags.get("sciwm.observation")
        return Record(
            experiment,
            Status(tags["sciwm.status"]),
            run.info.run_id,
            json.loads(unchunked(tags, "sciwm.handle")) if handle is not None else None,
            prediction_from_dict(json.loads(unchunked(tags, "sciwm.prediction")))
            if prediction is not None
            else None,
            Observation.from_dict(json.loads(unchunked(tags, "sciwm.observation")))
            if observation is not None
            else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(
            f"MLflow run {run.info.run_id} ({tags.get('sciwm.experiment_id', '?')}) holds "
            f"unreadable sciwm tags ({type(exc).__name__}: {exc}); restore its tags or mark "
            "the run with another sciwm.kind to leave it out"
        ) from exc
