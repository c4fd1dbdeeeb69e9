"""Parameters and search spaces: validation, unit-cube encoding, serialisation."""

from __future__ import annotations

import math

import pytest
import torch

from sciwm.errors import ParameterError
from sciwm.space import (
    Parameter,
    SearchSpace,
    parameter_to_dict,
    space_from_dict,
    space_to_dict,
)


@pytest.fixture
def space() -> SearchSpace:
    """A hand-written mixed space: linear float, log float, int, categorical, int fidelity."""
    return SearchSpace(
        (
            Parameter("temperature", "float", 250.0, 350.0),
            Parameter("learning_rate", "float", 1e-4, 1e-1, log=True),
            Parameter("layers", "int", 1, 5),
            Parameter("solvent", "categorical", choices=("water", "ethanol", "dmso")),
            Parameter("epochs", "int", 1, 100, fidelity=True),
        )
    )


# -- construction ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "float", "low": 1.0, "high": 1.0}, "must be below high"),
        ({"kind": "float", "low": 2.0, "high": 1.0}, "must be below high"),
        ({"kind": "float", "low": None, "high": 1.0}, "need low and high"),
        ({"kind": "float", "low": 0.0, "high": math.inf}, "finite"),
        ({"kind": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"kind": "float", "low": -1.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"kind": "int", "low": 0.5, "high": 3}, "whole numbers"),
        ({"kind": "categorical", "choices": ("a",)}, "at least 2 choices"),
        ({"kind": "categorical", "choices": ("a", "a")}, "distinct"),
        ({"kind": "categorical", "choices": (1, "1")}, "distinct"),
        ({"kind": "categorical", "choices": ("a", "b"), "log": True}, "numeric kinds only"),
        ({"kind": "complex", "low": 0.0, "high": 1.0}, "unknown kind"),
    ],
)
def test_bad_parameter_definitions_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match) as info:
        Parameter("pressure", **kwargs)
    assert "'pressure'" in str(info.value)


@pytest.mark.parametrize("name", ["", "a b", "x.y", "rate%"])
def test_bad_parameter_names(name: str) -> None:
    with pytest.raises(ParameterError, match="invalid"):
        Parameter(name, "float", 0.0, 1.0)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ParameterError, match=r"repeated: \['x'\]"):
        SearchSpace((Parameter("x", "float", 0, 1), Parameter("x", "int", 0, 3)))


def test_empty_space_rejected() -> None:
    with pytest.raises(ParameterError, match="at least one parameter"):
        SearchSpace(())


# -- validation of values --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("temperature", 200.0, "out of range"),
        ("temperature", 350.0001, "out of range"),
        ("temperature", "hot", "not a number"),
        ("temperature", None, "not a number"),
        ("temperature", math.nan, "not finite"),
        ("temperature", True, "boolean"),
        ("learning_rate", 0.0, "out of range"),
        ("layers", 2.5, "not a whole number"),
        ("layers", 6, "out of range"),
        ("solvent", "acetone", "not one of"),
    ],
)
def test_bad_values_name_the_parameter(
    space: SearchSpace, name: str, value: object, match: str
) -> None:
    with pytest.raises(ParameterError, match=match) as info:
        space[name].validate(value)
    assert repr(name) in str(info.value)


def test_values_are_canonicalised(space: SearchSpace) -> None:
    # Strings come from the command line; ints given as floats become ints.
    assert space["temperature"].validate("300") == 300.0
    assert isinstance(space["temperature"].validate(300), float)
    layers = space["layers"].validate("3.0")
    assert layers == 3 and isinstance(layers, int)
    assert space["solvent"].validate("dmso") == "dmso"
    numeric_choice = Parameter("batch", "categorical", choices=(16, 32, 64))
    assert numeric_choice.validate("32") == 32  # matched by text, returned as the choice
    assert space["learning_rate"].validate(1e-4) == 1e-4  # bounds are inclusive


def test_space_validate_unknown_and_missing(space: SearchSpace) -> None:
    full = {
        "temperature": 300,
        "learning_rate": 0.01,
        "layers": 2,
        "solvent": "water",
        "epochs": 10,
    }
    assert list(space.validate(full)) == space.names
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['temprature'\]") as info:
        space.validate({**full, "temprature": 1.0})
    assert "temperature" in str(info.value)  # lists what the space has
    partial = {k: v for k, v in full.items() if k not in ("layers", "epochs")}
    with pytest.raises(ParameterError, match=r"missing value\(s\).*\['layers', 'epochs'\]"):
        space.validate(partial)
    assert space.validate(partial, partial=True) == {
        "temperature": 300.0,
        "learning_rate": 0.01,
        "solvent": "water",
    }
    with pytest.raises(ParameterError, match="unknown parameter 'nope'"):
        space["nope"]


# -- encoding --------------------------------------------------------------------------------
def test_encode_closed_form(space: SearchSpace) -> None:
    row = {
        "temperature": 275.0,
        "learning_rate": 1e-3,
        "layers": 4,
        "solvent": "ethanol",
        "epochs": 100,
    }
    X = space.encode([row])
    assert X.shape == (1, 5) and X.dtype == torch.double
    expected = [
        (275.0 - 250.0) / 100.0,
        (math.log(1e-3) - math.log(1e-4)) / (math.log(1e-1) - math.log(1e-4)),  # = 1/3
        (4 - 1) / (5 - 1),
        1 / 2,  # second of three choices
        1.0,
    ]
    assert X[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_encode_checks_values_and_encode_valid_trusts_them(space: SearchSpace) -> None:
    rows = space.sample(20, generator=torch.Generator().manual_seed(3))
    valid = [space.validate(r) for r in rows]
    assert torch.equal(space.encode_valid(valid), space.encode(rows))
    with pytest.raises(ParameterError, match="temperature"):
        space.encode([{**rows[0], "temperature": 1e6}])


def test_encode_decode_round_trip(space: SearchSpace) -> None:
    rows = space.sample(50, generator=torch.Generator().manual_seed(0))
    decoded = space.decode(space.encode(rows))
    for a, b in zip(rows, decoded, strict=True):
        assert a.keys() == b.keys()
        for name in space.names:
            if isinstance(a[name], float):
                assert b[name] == pytest.approx(a[name], rel=1e-12)
            else:
                assert b[name] == a[name]


def test_sample_is_valid_and_seeded(space: SearchSpace) -> None:
    rows = space.sample(200, generator=torch.Generator().manual_seed(1))
    for row in rows:
        assert space.validate(row) == row
        assert isinstance(row["layers"], int) and isinstance(row["epochs"], int)
    again = space.sample(200, generator=torch.Generator().manual_seed(1))
    assert rows == again
    # Log-uniform: about half the draws of a 3-decade log range lie below the geometric middle.
    below = sum(r["learning_rate"] < math.sqrt(1e-4 * 1e-1) for r in rows) / len(rows)
    assert 0.4 < below < 0.6


def test_log_decode_closed_form() -> None:
    p = Parameter("lr", "float", 1e-4, 1.0, log=True)
    assert p.from_unit(0.5) == pytest.approx(1e-2, rel=1e-12)
    assert p.from_unit(0.25) == pytest.approx(1e-3, rel=1e-12)
    assert p.from_unit(1.0) <= 1.0 and p.from_unit(0.0) >= 1e-4  # clipped onto the bounds


def test_unit_bounds_decode_to_the_exact_bounds() -> None:
    p = Parameter("length_ps", "float", 20.0, 500.0, log=True, fidelity=True)
    assert p.from_unit(1.0) == 500.0 and p.from_unit(0.0) == 20.0
    assert p.from_unit(2.0) == 500.0  # clipped first


def test_int_rounding_and_clipping() -> None:
    p = Parameter("n", "int", 1, 5)
    assert [p.from_unit(u) for u in (0.0, 0.1, 0.2, 0.3, 0.49, 0.51, 1.0)] == [1, 1, 2, 2, 3, 3, 5]
    assert p.from_unit(-3.0) == 1 and p.from_unit(7.0) == 5
    log_int = Parameter("width", "int", 1, 1024, log=True)
    assert log_int.from_unit(0.5) == 32  # exp(log(1024)/2) = 32
    assert all(isinstance(log_int.from_unit(u / 10), int) for u in range(11))


def test_categorical_snaps_to_nearest_choice() -> None:
    p = Parameter("c", "categorical", choices=("a", "b", "c"))
    assert [p.from_unit(u) for u in (0.0, 0.24, 0.26, 0.74, 0.76, 1.0)] == list("aabbcc")


def test_round_trip_snaps_continuous_points(space: SearchSpace) -> None:
    X = torch.tensor([[0.3, 0.5, 0.6, 0.4, 0.123]], dtype=torch.double)
    snapped = space.round_trip(X)
    assert snapped[0, 0].item() == pytest.approx(0.3)  # floats stay
    assert snapped[0, 1].item() == pytest.approx(0.5)
    assert snapped[0, 2].item() == pytest.approx(0.5)  # layers: 1 + 0.6 * 4 = 3.4 -> 3
    assert snapped[0, 3].item() == pytest.approx(0.5)  # solvent: nearest choice is the middle
    assert snapped[0, 4].item() == pytest.approx((13 - 1) / 99)  # epochs: 1 + 0.123 * 99 -> 13
    assert torch.equal(space.round_trip(snapped), snapped)  # idempotent


def test_decode_rejects_wrong_shape(space: SearchSpace) -> None:
    with pytest.raises(ParameterError, match="n x 5"):
        space.decode(torch.zeros(3, 4))
    with pytest.raises(ParameterError, match="n x 5"):
        space.decode(torch.zeros(2, 1, 5))


def test_bounds_and_fidelity_indices(space: SearchSpace) -> None:
    bounds = space.bounds()
    assert bounds.shape == (2, 5) and bounds.dtype == torch.double
    assert torch.equal(bounds[0], torch.zeros(5, dtype=torch.double))
    assert torch.equal(bounds[1], torch.ones(5, dtype=torch.double))
    assert space.fidelity_indices == [4]
    assert space.dim == 5
    assert space.names == ["temperature", "learning_rate", "layers", "solvent", "epochs"]
    no_fidelity = SearchSpace((Parameter("x", "float", 0, 1),))
    assert no_fidelity.fidelity_indices == []


# -- serialisation ---------------------------------------------------------------------------
def test_space_dict_round_trip(space: SearchSpace) -> None:
    data = space_to_dict(space)
    assert space_from_dict(data) == space
    assert parameter_to_dict(space["learning_rate"]) == {
        "name": "learning_rate",
        "type": "float",
        "low": 1e-4,
        "high": 1e-1,
        "log": True,
    }
    assert parameter_to_dict(space["epochs"])["fidelity"] is True
    assert parameter_to_dict(space["solvent"])["choices"] == ["water", "ethanol", "dmso"]
