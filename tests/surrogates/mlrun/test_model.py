"""MLRunWorldModel through the world-model conformance suite, and its LCDB mode."""

from __future__ import annotations

import pytest

from surrogates.mlrun.model import MLRunWorldModel
from tests.world_model_conformance import WorldModelConformance


class TestMLRunConformance(WorldModelConformance):
    """``pretrain = 'none'``: trained from scratch on the campaign's runs (hashing encoder)."""

    @pytest.fixture(scope="class")
    def model_factory(self):
        return lambda space, outcomes: MLRunWorldModel(
            space, outcomes, encoder="hashing", steps=150, n_members=3
        )
