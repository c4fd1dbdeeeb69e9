"""The MD world model's answers: source choice, conformal quantiles, valid ranges."""

from __future__ import annotations

import math

import pytest
import torch

from sciwm.md.observables import PER_FRAME
from surrogates.md.answers import SCORE_LENGTHS, SOURCES, Answers, Check, Evidence


def _to_unit(t: torch.Tensor) -> torch.Tensor:
    return ((t.double() - 300.0) / 300.0).unsqueeze(-1)


def _noise(t: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    return torch.full((t.numel(), len(PER_FRAME)), 0.01, dtype=torch.double)


def _line(t: torch.Tensor) -> torch.Tensor:
    """Every observable ``0.1 + 0.2 * (t - 300) / 300``: linear in temperature."""
    return (0.1 + 0.2 * (t.double() - 300.0) / 300.0).unsqueeze(-1).expand(-1, len(PER_FRAME))


def _answers(grid_bias: float) -> Answers:
    t = torch.tensor([300.0, 400.0, 500.0, 600.0], dtype=torch.double)
    small = torch.full((4, len(PER_FRAME)), 0.005, dtype=torch.double)
    real = Evidence(t, _line(t), small)
    tg = torch.linspace(300.0, 600.0, 5, dtype=torch.double)
    grid = Evidence(tg, _line(tg) + grid_bias, torch.full((5, len(PER_FRAME)), 0.005))
    return Answers(_to_unit, 0, _noise, real, grid)


def _checks(n: int = 40) -> list[Check]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        t = [400.0, 500.0, 350.0][i % 3]
        y = _line(torch.tensor([t]))[0] + 0.01 * torch.randn(len(PER_FRAME), generator=g)
        left_out = t if t in (400.0, 500.0) else None
        out.append(Check(t, SCORE_LENGTHS[i % len(SCORE_LENGTHS)], y.double(), left_out))
    return out


def test_a_biased_emulator_is_not_chosen() -> None:
    answers = _answers(grid_bias=0.08)
    answers.calibrate(_checks())
    assert all(SOURCES[int(c)] in ("real_linear", "real_quadratic") for c in answers.choice)
    assert torch.all(answers.errors[2] > answers.errors[0])


def test_an_unbiased_emulator_may_be_chosen_and_every_length_has_scores() -> None:
    answers = _answers(grid_bias=0.0)
    answers.calibrate(_checks())
    assert answers.errors.isfinite().all()
    assert all(len(per_length) == len(SCORE_LENGTHS) for per_length in answers.scores)
    assert all(s.numel() > 0 for per_length in answers.scores for s in per_length)


def test_conformal_quantile_is_the_order_statistic() -> None:
    answers = _answers(0.0)
    scores = torch.arange(1, 20, dtype=torch.double)  # 19 scores: 1..19
    answers.scores[0] = [scores.clone() for _ in SCORE_LENGTHS]
    # ceil((n + 1) * level)-th smallest: level 0.9 -> the 18th, 0.5 -> the 10th
    assert answers.quantile(0, 0.9) == 18.0
    assert answers.quantile(0, 0.5) == 10.0
    assert answers.quantile(0, 0.99) == 19.0  # never beyond the largest score
    answers.scores[1] = [torch.empty(0, dtype=torch.double) for _ in SCORE_LENGTHS]
    assert answers.quantile(1, 0.9) == pytest.approx(1.6448536, abs=1e-6)  # the normal one


def test_quantile_reads_the_nearest_scored_length() -> None:
    answers = _answers(0.0)
    answers.scores[0] = [torch.full((9,), float(j + 1)) for j in range(len(SCORE_LENGTHS))]
    assert answers.quantile(0, 0.9, SCORE_LENGTHS[0] / 10) == 1.0
    assert answers.quantile(0, 0.9, SCORE_LENGTHS[-1] * 10) == float(len(SCORE_LENGTHS))


def test_state_round_trip() -> None:
    answers = _answers(0.08)
    answers.calibrate(_checks())
    back = _answers(0.08)
    back.load(answers.state())
    assert torch.equal(back.choice, answers.choice)
    for k in range(len(PER_FRAME)):
        assert back.quantile(k, 0.9, 700.0) == answers.quantile(k, 0.9, 700.0)


def test_head_recovers_a_linear_law() -> None:
    answers = _answers(0.0)
    head = answers.head(0, source=0)
    mean, std = head.moments(_to_unit(torch.tensor([450.0])), observation_noise=False)
    assert float(mean[0]) == pytest.approx(0.2, abs=1e-3)
    assert 0 < float(std[0]) < 0.01
    assert not math.isnan(float(std[0]))
