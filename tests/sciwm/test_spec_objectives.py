"""Campaign files with several objectives and outcome constraints."""

from __future__ import annotations

import pytest

from sciwm.errors import SpecError
from sciwm.spec import parse_spec


def _data(**changes) -> dict:
    data = {
        "campaign": {"name": "mo"},
        "parameters": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
        "objectives": [
            {"name": "accuracy", "direction": "maximize", "ref": 0.5},
            {"name": "train_time", "direction": "minimize"},
        ],
        "constraints": [{"outcome": "memory", "op": "<=", "bound": 2.0}],
        "budget": {"total": 10.0},
        "connector": {"type": "local"},
    }
    data.update(changes)
    return data


def test_several_objectives_and_constraints_parse():
    spec = parse_spec(_data(), check_world_model=False)
    assert spec.multi_objective
    assert [o.maximize for o in spec.objectives] == [True, False]
    assert [o.ref for o in spec.objectives] == [0.5, None]
    # the constrained outcome is recorded and modelled though no list names it
    assert spec.outcome_names == ["accuracy", "train_time", "memory"]
    (c,) = spec.constraints
    assert c.holds(2.0) and not c.holds(2.1)
    single = parse_spec(_data(objectives=[{"name": "accuracy"}]), check_world_model=False)
    assert not single.multi_objective and single.outcome_names == ["accuracy", "memory"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"objectives": [{"name": "a"}, {"name": "a", "direction": "minimize"}]},
            "objective names must be unique; repeated: ['a']",
        ),
        ({"objectives": [{"name": "a", "ref": 1.0}]}, "'ref' (a hypervolume reference point)"),
        ({"constraints": [{"outcome": "m", "op": "<", "bound": 1.0}]}, "constraints.0.op"),
        ({"constraints": [{"outcome": "m", "op": "<=", "bound": float("nan")}]}, "finite"),
        ({"constraints": [{"outcome": "x", "op": "<=", "bound": 1.0}]}, "both as parameter"),
        ({"stopping": {"target": 0.9}}, "stopping.target applies to a single objective"),
        ({"scheduler": {"acquisition": "gittins"}}, "'gittins' supports one objective"),
        ({"stopping": {"min_gain_per_cost": 0.1}}, "min_gain_per_cost applies to a single"),
    ],
)
def test_bad_objectives_and_constraints_are_refused(changes, message):
    with pytest.raises(SpecError) as err:
        parse_spec(_data(**changes), check_world_model=False)
    assert message in str(err.value)
