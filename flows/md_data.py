"""Generate the MD training and reference data set: resumable, cached chunk by chunk.

Each trajectory (a temperature and a seed) is run as a sequence of chunks (default 1 ns);
every chunk continues from the final positions and velocities of the previous one and is
saved to the cache as soon as it finishes, so an interrupted run resumes where it stopped and
never redoes or loses a finished chunk. :func:`pack` then writes one compressed ``npz`` with
all trajectories (centred coordinates in float16, energies in float32).

Run it (the committed data set was made with exactly this, see ``data/md/README.md``)::

    python -m flows.md_data --out data/md/alanine_vacuum.npz --cache data/md/.cache

``md_data_flow`` is the same work as a Prefect flow with one task per chunk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sciwm.md.engine import RunConfig, simulate
from sciwm.md.observables import ALPHA_R_PSI, BASINS
from sciwm.md.systems import SystemSpec, system_meta


@dataclass(frozen=True)
class DataDesign:
    """Which trajectories to run.

    Attributes:
        train_temperatures: Kelvin; seed ``0`` of each is the emulator's training data.
        heldout_temperatures: Kelvin; never trained on, reference only.
        reference_seeds: Seeds of the independent reference runs at every temperature.
        extra_reference: More ``(temperature, seed)`` reference runs where one run does not
            converge the basin populations (the rare φ > 0 basin at high temperature).
        train_seeds: Seeds of the training runs (at training temperatures only).
        length_ns: Length of each trajectory, ns.
        chunk_ns: Length of one cached chunk, ns.
        frame_ps: Interval between saved frames, ps.
        equilibrate_ps: Discarded equilibration before chunk 0, ps.
        solvent: ``"vacuum"`` or an implicit-solvent model.
    """

    train_temperatures: tuple[float, ...] = (300.0, 400.0, 500.0, 600.0)
    heldout_temperatures: tuple[float, ...] = (450.0,)
    train_seeds: tuple[int, ...] = (0,)
    reference_seeds: tuple[int, ...] = (1,)
    extra_reference: tuple[tuple[float, int], ...] = (
        (500.0, 2),
        (500.0, 3),
        (600.0, 2),
        (600.0, 3),
        (450.0, 2),
    )
    length_ns: float = 10.0
    chunk_ns: float = 1.0
    frame_ps: float = 1.0
    equilibrate_ps: float = 20.0
    solvent: str = "vacuum"
    extra: dict[str, Any] = field(default_factory=dict)

    def trajectories(self) -> list[tuple[float, int, str]]:
        """``(temperature, seed, role)`` for every trajectory, in run order."""
        out: list[tuple[float, int, str]] = []
        for t in self.train_temperatures:
            out += [(t, s, "train") for s in self.train_seeds]
        for t in self.train_temperatures + self.heldout_temperatures:
            out += [(t, s, "reference") for s in self.reference_seeds]
        out += [(t, s, "reference") for t, s in self.extra_reference]
        return out


def _chunk_path(cache: Path, temperature: float, seed: int, k: int) -> Path:
    return cache / f"T{temperature:g}_s{seed}_c{k:04d}.npz"


def run_chunk(cache: Path, design: DataDesign, temperature: float, seed: int, k: int) -> Path:
    """Run (or reuse) chunk ``k`` of one trajectory; returns its cache file."""
    path = _chunk_path(cache, temperature, seed, k)
    if path.is_file():
        return path
    start = None
    if k > 0:
        with np.load(_chunk_path(cache, temperature, seed, k - 1)) as prev:
            start = (prev["final_positions"], prev["final_velocities"])
    spec = SystemSpec(solvent=design.solvent)
    config = RunConfig(
        temperature=temperature,
        length_ps=design.chunk_ns * 1000.0,
        frame_ps=design.frame_ps,
        equilibrate_ps=design.equilibrate_ps,
        seed=seed * 100_003 + k,
    )
    out = simulate(spec, config, start=start)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp,
        positions=out["positions"],
        energy=out["energy"],
        final_positions=out["final_positions"],
        final_velocities=out["final_velocities"],
        wall_s=np.float64(out["wall_s"]),
        n_steps=np.int64(out["n_steps"]),
    )
    tmp.replace(path)
    return path


def generate(
    cache: str | Path,
    design: DataDesign | None = None,
    log: Callable[[str], None] = print,
    chunk_runner: Callable[..., Path] = run_chunk,
) -> list[Path]:
    """Run every chunk of the design that is not cached yet (one at a time).

    Returns:
        All chunk files, in design order.
    """
    design = design or DataDesign()
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "design.json").write_text(json.dumps(asdict(design), indent=2))
    n_chunks = max(1, int(round(design.length_ns / design.chunk_ns)))
    paths = []
    for temperature, seed, role in design.trajectories():
        for k in range(n_chunks):
            t0 = time.perf_counter()
            existed = _chunk_path(cache, temperature, seed, k).is_file()
            paths.append(chunk_runner(cache, design, temperature, seed, k))
            if not existed:
                log(
                    f"{role} T={temperature:g} K seed={seed} chunk {k + 1}/{n_chunks} "
                    f"done in {time.perf_counter() - t0:.1f} s"
                )
    return paths


def pack(cache: str | Path, out: str | Path, design: DataDesign | None = None) -> Path:
    """Concatenate the cached chunks into one compressed data set.

    The file holds, per trajectory ``i``: ``pos_i`` (``n_frames x n_atoms x 3`` float16,
    centred, nm), ``energy_i`` (float32, kJ/mol), and a JSON ``meta`` with temperature, seed,
    role, frame interval and OpenMM wall time per ns.
    """
    design = design or DataDesign()
    cache, out = Path(cache), Path(out)
    n_chunks = max(1, int(round(design.length_ns / design.chunk_ns)))
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "design": asdict(design),
        "system": system_meta(SystemSpec(solvent=design.solvent)),
        "basins": {"names": list(BASINS), "alpha_r_psi": list(ALPHA_R_PSI)},
        "trajectories": [],
    }
    for i, (temperature, seed, role) in enumerate(design.trajectories()):
        pos, energy, wall, steps = [], [], 0.0, 0
        for k in range(n_chunks):
            with np.load(_chunk_path(cache, temperature, seed, k)) as c:
                pos.append(c["positions"])
                energy.append(c["energy"])
                wall += float(c["wall_s"])
                steps += int(c["n_steps"])
        p = np.concatenate(pos)
        p = p - p.mean(axis=1, keepdims=True)
        arrays[f"pos_{i}"] = p.astype(np.float16)
        arrays[f"energy_{i}"] = np.concatenate(energy).astype(np.float32)
        meta["trajectories"].append(
            {
                "index": i,
                "temperature": temperature,
                "seed": seed,
                "role": role,
                "n_frames": int(p.shape[0]),
                "frame_ps": design.frame_ps,
                "openmm_wall_s": wall,
                "openmm_steps": steps,
                "openmm_s_per_ns": wall / (steps * 0.002 / 1000.0),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)
    return out


def md_data_flow(cache: str, out: str) -> str:
    """Prefect flow: one task per chunk, then pack (imports Prefect only when called)."""
    from prefect import flow, task

    chunk_task = task(run_chunk, name="md-chunk")

    @flow(name="sciwm-md-data")
    def _flow() -> str:
        generate(cache, chunk_runner=chunk_task)
        return str(pack(cache, out))

    return _flow()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate (resumably) and pack."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/md/alanine_vacuum.npz")
    parser.add_argument("--cache", default="data/md/.cache")
    parser.add_argument("--length-ns", type=float, default=DataDesign.length_ns)
    args = parser.parse_args(argv)
    design = DataDesign(length_ns=args.length_ns)

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    generate(args.cache, design, log=log)
    path = pack(args.cache, args.out, design)
    log(f"packed {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
