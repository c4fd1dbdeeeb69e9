"""Retraining on a campaign's real results (flows/retrain.py) and the MLflow round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from flows.retrain import retrain_world_model
from sciwm.spec import parse_spec
from sciwm.store import RecordStore
from surrogates.mlrun.model import MLRunWorldModel
from tests.surrogates.mlrun.test_model import LCDB_SETTINGS, LEARNERS, cache, runs  # noqa: F401

SPEC = f"""
[campaign]
name = "retrain-mlrun"

[[parameters]]
name = "learner"
type = "categorical"
choices = {list(LEARNERS)!r}

[[parameters]]
name = "train_size"
type = "int"
low = 32
high = 1437
log = true

[[objectives]]
name = "accuracy"

[budget]
total = 100.0

[connector]
type = "local"

[world_model]
type = "surrogates.mlrun.model:MLRunWorldModel"
"""


def settings_toml(settings: dict) -> str:
    """``[world_model.settings]`` as TOML (flat values and one nested table of numbers)."""
    lines = ["[world_model.settings]"]
    nested = []
    for k, v in settings.items():
        if isinstance(v, dict):
            for name, table in v.items():
                nested.append(f"[world_model.settings.{k}.{name}]")
                nested += [f"{kk} = {float(vv)!r}" for kk, vv in table.items()]
        else:
            lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    return "\n" + "\n".join(lines + nested) + "\n"


def test_retrain_logs_a_model_that_round_trips_through_mlflow(
    tmp_path: Path,
    cache: Path,  # noqa: F811
) -> None:
    text = SPEC + settings_toml(LCDB_SETTINGS)
    spec = parse_spec(tomllib.loads(text), "test")
    assert spec.world_model.settings["pretrain"] == "lcdb"
    store = RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.open_campaign(spec, text)
    exps, obs = runs(
        [("SVC_rbf", 1000, 0.99, 3.0), ("BernoulliNB", 500, 0.4, 0.5), ("SVC_rbf", 64, 0.9, 0.1)],
        "retrain-mlrun",
    )
    for e, o in zip(exps, obs, strict=True):
        rec = store.record_submitted(store.record_proposal(e, None), {"pid": 1})
        store.record_observation(rec, o)

    summary = retrain_world_model("retrain-mlrun", store.tracking_uri)
    assert summary["n_observations"] == 3 and summary["artifact"].startswith("world_model/")
    assert summary["experiment_ids"] == [e.id for e in exps]

    loaded = RecordStore(store.tracking_uri).load_world_model("retrain-mlrun")
    assert isinstance(loaded, MLRunWorldModel)
    fresh = MLRunWorldModel(spec.space(), ["accuracy"], **LCDB_SETTINGS)
    fresh.fit(exps, obs)
    query = [{"learner": "RandomForestClassifier", "train_size": 700}]
    a, b = loaded.predict(query)[0], fresh.predict(query)[0]
    assert a.outcomes["accuracy"].mean == pytest.approx(b.outcomes["accuracy"].mean, abs=1e-5)
    assert a.cost.mean == pytest.approx(b.cost.mean, rel=1e-4)


def test_retrain_without_results_raises(tmp_path: Path, cache: Path) -> None:  # noqa: F811
    from sciwm.errors import WorldModelError

    spec = parse_spec(tomllib.loads(SPEC), "test")
    store = RecordStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.open_campaign(spec, SPEC)
    with pytest.raises(WorldModelError, match="no finished experiments"):
        retrain_world_model("retrain-mlrun", store.tracking_uri)
