"""``sciwm bench connectors``: its HTTP problems, small, against the real lab server process."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciwm.bench.connectors import through_connector

pytestmark = pytest.mark.timeout(120)


def test_faulty_lab_figures_count_what_they_say(tmp_path: Path) -> None:
    rows = through_connector(tmp_path, 30, {"rate": 0.3, "slow_s": 0.5, "seed": 2}, seed=2)
    values = {r["metric"]: r["value"] for r in rows}
    assert {r["problem"] for r in rows} == {"http_faults"}
    assert values["lost"] == values["duplicated"] == values["wrong"] == 0
    assert values["throughput_per_s"] > 0
    assert rows[0]["faults_injected"] >= 5  # the server really injected faults
