"""Landmarking: a real run on the user's data set informs the prior's other answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from surrogates.mlrun.landmarks import (
    CampaignLandmarks,
    Landmark,
    LandmarkTable,
    adjust,
    combine,
    dataset_scale,
    level_shift,
)
from surrogates.mlrun.neighbours import NeighbourBank


def _bank(n_sets: int = 12) -> NeighbourBank:
    """Learner ``b`` scores 0.1 above the fast learner ``a`` on every data set; ``c`` 0.2
    below. Data sets differ in level (``a`` from 0.5 to 0.8) and in one meta-feature."""
    learners, datasets, pos, y = [], [], [], []
    for d in range(n_sets):
        level = 0.5 + 0.3 * d / (n_sets - 1)
        for key, off in (("a", 0.0), ("b", 0.1), ("c", -0.2)):
            learners.append(key)
            datasets.append(f"d{d}")
            pos.append([float(d), 10.0])  # meta-feature, log2 size
            y.append([level + off, 0.0])
    return NeighbourBank(learners, datasets, np.array(pos), np.array(y), k=3)


def test_estimate_is_the_landmark_plus_the_learners_difference() -> None:
    table = LandmarkTable(_bank())
    marks = [Landmark("a", 10.0, 0.62)]
    mean, var = table.estimate("b", 10.0, np.array([3.0]), marks, "new")
    assert mean == pytest.approx(0.72, abs=1e-9) and 0 < var < 1e-4
    mean, _ = table.estimate("c", 10.0, np.array([3.0]), marks, "new")
    assert mean == pytest.approx(0.42, abs=1e-9)
    assert table.estimate("unknown", 10.0, np.array([3.0]), marks, "new") is None
    assert table.estimate("b", 10.0, np.array([3.0]), [], "new") is None


def test_combine_and_dataset_scale_closed_form() -> None:
    m, v = combine(0.5, 0.04, (0.7, 0.01))
    assert m == pytest.approx((0.5 / 0.04 + 0.7 / 0.01) / (1 / 0.04 + 1 / 0.01))
    assert v == pytest.approx(1 / (1 / 0.04 + 1 / 0.01))
    assert combine(0.5, 0.04, None) == (0.5, 0.04)
    assert dataset_scale([]) == 1.0
    assert dataset_scale([3.0]) == pytest.approx(math.sqrt((3 + 9) / 4))
    assert dataset_scale([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]) == 1.0  # never below the global
    assert dataset_scale([100.0]) == 3.0  # cap


def test_adjust_moves_the_mean_and_widens_for_a_surprising_landmark() -> None:
    table = LandmarkTable(_bank())
    marks = [Landmark("a", 10.0, 0.62)]
    mean, std = adjust(table, 0.5, 0.1, "b", 10.0, np.array([3.0]), marks, [2.5], "new")
    assert 0.5 < mean <= 0.72 and std == pytest.approx(0.1 * dataset_scale([2.5]))
    assert adjust(table, 0.5, 0.1, "b", 10.0, np.array([3.0]), [], [], "new") == (0.5, 0.1)


def test_campaign_landmarks_apply_only_to_their_data_set_and_round_trip() -> None:
    bank = _bank()

    class Pred:  # the two things CampaignLandmarks reads from a RunPredictor
        def __init__(self) -> None:
            self.bank = bank

        @staticmethod
        def _bank_keys(records):
            return (
                [r.learner for r in records],
                [r.dataset for r in records],
                np.array([[3.0, math.log2(r.anchor)] for r in records]),
            )

    from surrogates.mlrun.record import RunRecord

    pred = Pred()
    lm = CampaignLandmarks()
    assert not lm
    lm.fit(
        pred, [RunRecord("a", "new", {}, 1024.0)], [0.62], torch.tensor([0.5]), torch.tensor([0.1])
    )
    assert lm and lm.z["new"] == [pytest.approx(1.2)]
    records = [RunRecord("b", "new", {}, 1024.0), RunRecord("b", "other", {}, 1024.0)]
    mean = torch.tensor([[0.5, 1.0], [0.5, 1.0]])
    std = torch.tensor([[0.1, 0.3], [0.1, 0.3]])
    m, s = lm.apply(pred, records, mean, std)
    # level mode: residual 0.12, shared 0.5 -> +0.06, only on the landmark's data set
    assert float(m[0, 0]) == pytest.approx(0.56) and float(m[1, 0]) == 0.5
    assert float(s[0, 0]) == pytest.approx(0.1 * dataset_scale([1.2]))
    nb = CampaignLandmarks("neighbours")
    nb.fit(
        pred, [RunRecord("a", "new", {}, 1024.0)], [0.62], torch.tensor([0.5]), torch.tensor([0.1])
    )
    m2, _ = nb.apply(pred, records, mean, std)
    assert 0.56 < float(m2[0, 0]) <= 0.72  # toward the table's 0.62 + 0.1
    assert torch.equal(m[:, 1], mean[:, 1]) and torch.equal(s[:, 1], std[:, 1])
    back = CampaignLandmarks.from_json(lm.to_json())
    assert back.marks == lm.marks and back.z == lm.z


def test_level_shift_closed_form_and_modes() -> None:
    assert level_shift([0.12], shared=0.5) == pytest.approx(0.06)
    assert level_shift([0.1, 0.3], shared=0.5) == pytest.approx(0.4 / 3)
    assert level_shift([0.1], shared=0.9) == pytest.approx(0.1 / (1 + 0.1 / 0.9))
    assert level_shift([]) == 0.0
    with pytest.raises(ValueError, match="landmark mode"):
        CampaignLandmarks("sometimes")
    off = CampaignLandmarks("off")
    off.marks = {"d": [Landmark("a", 10.0, 0.5)]}
    assert not off


def test_landmarks_setting_is_checked() -> None:
    from sciwm.errors import WorldModelError
    from surrogates.mlrun.settings import MLRunSettings

    assert MLRunSettings.from_mapping({"landmarks": "off"}, None).landmarks == "off"
    with pytest.raises(WorldModelError, match="landmarks must be one of"):
        MLRunSettings.from_mapping({"landmarks": "always"}, None)
