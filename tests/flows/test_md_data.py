"""The MD data flow: real (tiny) simulations, cached per chunk, resumable, packed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openmm")

from flows.md_data import DataDesign, _chunk_path, generate, pack, run_chunk  # noqa: E402
from surrogates.md.data import load_dataset  # noqa: E402

pytestmark = pytest.mark.timeout(90)

TINY = DataDesign(
    train_temperatures=(400.0,),
    heldout_temperatures=(350.0,),
    length_ns=0.004,
    chunk_ns=0.002,
    frame_ps=0.5,
    equilibrate_ps=0.5,
    extra_reference=(),
)


def test_generate_is_resumable_and_packs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    calls: list[tuple] = []

    def counting(*args):
        if not _chunk_path(args[0], *args[2:]).is_file():
            calls.append(args[2:])
        return run_chunk(*args)

    paths = generate(cache, TINY, log=lambda m: None, chunk_runner=counting)
    # 1 train + 2 reference trajectories, 2 chunks each
    assert len(paths) == 6 and len(calls) == 6
    # a lost chunk is redone; the others are reused
    paths[3].unlink()
    calls.clear()
    generate(cache, TINY, log=lambda m: None, chunk_runner=counting)
    assert calls == [(400.0, 1, 1)]

    out = pack(cache, tmp_path / "md.npz", TINY)
    data = load_dataset(out)
    assert [t.role for t in data.trajectories] == ["train", "reference", "reference"]
    assert data.trajectories[0].positions.shape == (8, 22, 3)
    assert data.heldout_temperatures == [350.0]
    assert data.molecule.n_atoms == 22 and data.molecule.phi == (4, 6, 8, 14)
    centroid = data.trajectories[0].positions.mean(1)
    assert float(np.abs(centroid).max()) < 1e-3
