"""The synthetic problems of the campaign bench: the dear-optimum one is Hartmann6 mirrored."""

from __future__ import annotations

import pytest

from sciwm.testing.problems import PROBLEMS, problem_named

OPT = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]  # Hartmann6's minimiser


def test_dear_optimum_lies_where_experiments_cost_most() -> None:
    plain, dear = problem_named("hartmann6"), problem_named("hartmann6_dear")
    at = {f"x{i + 1}": v for i, v in enumerate(OPT)}
    mirrored = {**at, "x1": 1.0 - at["x1"]}
    f_plain, c_plain = plain.evaluate(at)
    f_dear, c_dear = dear.evaluate(mirrored)
    assert f_dear == pytest.approx(f_plain) == pytest.approx(-3.32237, abs=1e-4)
    assert c_dear == pytest.approx(10 ** ((1.0 - OPT[0] + OPT[5]) / 2))
    assert c_dear > 10**0.5 > c_plain  # dearer than the median cost; the plain one cheaper
    assert dear.evaluate(at)[0] > -1.2  # the plain optimum's place is far from optimal here
    assert dear.target() == plain.target()
    assert "hartmann6_dear" in [p.name for p in PROBLEMS]
