"""``sciwm bench serve``'s measurement, small, against a real ``sciwm serve``."""

from __future__ import annotations

import pytest

from sciwm.bench.serve import METRICS, _quantile, candidates, measure
from tests.integration.serve.conftest import NAME

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_measure_reports_every_metric(store_uri: str) -> None:
    got = measure(store_uri, NAME, n_single=30, n_batches=1, threads=1)
    assert set(got) == set(METRICS)
    assert 0 < got["latency_p50_ms"] <= got["latency_p99_ms"]
    assert got["predictions_per_s"] > 0 and got["first_answer_s"] > 0


def test_candidates_are_valid_and_seeded(store_uri: str) -> None:
    a = candidates(store_uri, NAME, 50, seed=3)
    assert a == candidates(store_uri, NAME, 50, seed=3) != candidates(store_uri, NAME, 50, 4)
    assert all(0 <= c["x"] <= 1 and c["kind"] in ("a", "b") for c in a)


def test_quantile_interpolates() -> None:
    assert _quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert _quantile([1.0, 2.0], 0.99) == pytest.approx(1.99)
