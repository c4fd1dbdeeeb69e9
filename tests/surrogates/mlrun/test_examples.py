"""The shipped ML-run campaign files parse, and every learner they offer is one LCDB knows."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from lab_connectors.mltrain import MLTrainConnector, check_learner
from sciwm.spec import parse_spec
from surrogates.mlrun.model import MLRunWorldModel
from tests.surrogates.mlrun.test_model import SLICE, cache  # noqa: F401


def spec_of(name: str):
    text = resources.files("sciwm.examples").joinpath(name).read_text()
    return parse_spec(tomllib.loads(text), name)


@pytest.mark.parametrize("name", ["demo_mlrun.toml", "mlrun_campaign.toml"])
def test_campaign_files_parse(name: str) -> None:
    spec = spec_of(name)
    assert spec.world_model.settings["pretrain"] == "lcdb"
    for learner in spec.space()["learner"].choices:
        check_learner(str(learner))  # the mltrain connector can run every one


def test_demo_world_model_knows_every_learner(tmp_path: Path, cache: Path) -> None:  # noqa: F811
    spec = spec_of("demo_mlrun.toml")
    settings = {**spec.world_model.settings, "encoder": "hashing", "pretrain_data": str(SLICE)}
    model = MLRunWorldModel(spec.space(), spec.outcome_names, **settings, pretrain_steps=100)
    model.fit([], [])
    choices = spec.space()["learner"].choices
    preds = model.predict([{"learner": c, "train_size": 1437} for c in choices])
    assert not any(p.extrapolating for p in preds), [
        c for c, p in zip(choices, preds, strict=True) if p.extrapolating
    ]
    MLTrainConnector(tmp_path, **spec.connector.settings)  # its connector settings are valid
