"""Run descriptions: one renderer for LCDB rows, demo runs and users' runs."""

from __future__ import annotations

import pytest

from sciwm.errors import WorldModelError
from sciwm.lcdb.meta import META_FEATURES
from surrogates.mlrun.describe import describe_run, segments

META = dict(zip(META_FEATURES, (1797, 65, 10, 10.2, 9.7, 98.5, 4.6, 0.0), strict=True))


def test_full_description_names_everything() -> None:
    text = describe_run(
        "sklearn.ensemble.RandomForestClassifier",
        "digits",
        META,
        train_size=512,
        hyperparameters={"n_estimators": 100},
    )
    assert text.startswith("Learner: RandomForestClassifier (random forest")
    assert "n_estimators=100" in text
    assert "Data set: digits; 1797 instances, 65 features, 10 classes" in text
    assert "trained on 512 examples" in text


def test_segments_match_the_full_text_and_short_names() -> None:
    learner, data = segments("sklearn.svm.SVC_rbf", "digits", META)
    assert learner == segments("SVC_rbf", "x")[0]  # module path does not change the text
    assert learner in describe_run("SVC_rbf", "digits", META) and data.startswith("Data set")
    assert "default settings" in learner


def test_missing_meta_feature_and_learner_raise() -> None:
    with pytest.raises(WorldModelError, match="lacks meta-feature"):
        describe_run("SVC_rbf", "digits", {"NumberOfInstances": 3})
    with pytest.raises(WorldModelError, match="learner"):
        describe_run(" ", "digits")
