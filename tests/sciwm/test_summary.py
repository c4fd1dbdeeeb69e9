"""Tests of the campaign summary helpers that do not need a store."""

from __future__ import annotations

from sciwm.space import Parameter, SearchSpace
from sciwm.summary import fidelity_note

SPACE = SearchSpace(
    (
        Parameter("temperature", "float", 300.0, 600.0),
        Parameter("length_ps", "float", 20.0, 500.0, log=True, fidelity=True),
    )
)


def test_fidelity_note_flags_results_below_the_target_fidelity() -> None:
    note = fidelity_note(SPACE, {"temperature": 450.0, "length_ps": 20.0})
    assert note == "measured at length_ps=20, below the target fidelity length_ps=500"


def test_fidelity_note_is_silent_at_the_target_fidelity() -> None:
    assert fidelity_note(SPACE, {"temperature": 450.0, "length_ps": 500.0}) is None
    # a log-scale round trip lands a hair below the bound: still the target
    assert fidelity_note(SPACE, {"temperature": 450.0, "length_ps": 499.99999999999}) is None


def test_fidelity_note_is_silent_without_fidelity_parameters() -> None:
    space = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    assert fidelity_note(space, {"x": 0.2}) is None
