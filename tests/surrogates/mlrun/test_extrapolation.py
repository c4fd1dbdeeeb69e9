"""The far-from-data check of the run predictor, on hand-made training statistics."""

from __future__ import annotations

import math

import torch

from surrogates.mlrun.extrapolation import RANGE_MARGIN, far_reasons
from surrogates.mlrun.heads import Inputs

#: Two training texts (learner segment of width 2, then a data segment of width 2); numeric
#: inputs: log2 size (mean 10, std 2, standardised range [-1, 1]) and one meta-feature.
STATS = {
    "text_bank": torch.tensor([[1.0, 0.0, 5.0, 5.0], [0.0, 1.0, -5.0, 5.0]]),
    "num_min": torch.tensor([-1.0, -1.0]),
    "num_max": torch.tensor([1.0, 1.0]),
    "num_mean": torch.tensor([10.0, 0.0]),
    "num_std": torch.tensor([2.0, 1.0]),
}
NAMES = ["log2 training size", "fraction of numeric features"]


def runs(text: list[list[float]], numeric: list[list[float]]) -> tuple[Inputs, Inputs]:
    t, n = torch.tensor(text), torch.tensor(numeric)
    curve = torch.zeros(len(t), 1)
    return Inputs(t, n, curve), Inputs(t, n, curve)


def test_a_run_like_the_training_data_is_inside_whatever_its_data_segment() -> None:
    raw, x = runs([[1.0, 0.0, -9.0, 3.0]], [[0.0, 1.0 + 0.9 * RANGE_MARGIN]])
    assert far_reasons(STATS, 2, NAMES, raw, x) == [None]


def test_each_reason_names_what_lies_outside() -> None:
    raw, x = runs(
        [[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0], [1.5, 0.0], [0.0, -1.0 - 2 * RANGE_MARGIN]],
    )
    unlike, larger, below = far_reasons(STATS, 2, NAMES, raw, x)
    assert unlike == f"a learner unlike any trained on (similarity {math.sqrt(0.5):.2f})"
    # standardised 1.5 is log2 size 13 (8192); the largest trained on is 1.0 -> 12 (4096)
    assert larger == "training size 8192 is above the largest trained on (4096)"
    assert below == "fraction of numeric features is below the range of the training data"
