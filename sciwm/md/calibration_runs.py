"""Real OpenMM runs of alanine dipeptide (vacuum) at temperatures the emulator never saw.

Two roles, both apart from the emulator's training data (``data/md/alanine_vacuum.npz``):

- ``calibration``: runs the MD world model calibrates its intervals on
  (:mod:`surrogates.md.answers`), at temperatures between the training ones;
- ``check``: runs only the benchmark reports on (``sciwm bench md``'s ``predict`` rows),
  at a temperature between the training ones and one beyond them.

Only the backbone dihedrals of every frame are kept (float16 degrees, 1 ps apart), which is
all the observables of :data:`sciwm.md.observables.PER_FRAME` need; a few hundred kB.

Make them (resumable: finished runs are kept in ``--out`` and skipped)::

    OMP_NUM_THREADS=1 python -m sciwm.md.calibration_runs --out data/md/calibration_runs.npz
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sciwm.md.observables import dihedral

#: The shipped file.
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "md" / "calibration_runs.npz"


@dataclass(frozen=True)
class RunSpec:
    """One real run: role, temperature (K), seed, length (ps)."""

    role: str
    temperature: float
    seed: int
    length_ps: float = 2000.0


#: The shipped design: 2 ns runs (equilibrated 20 ps from the minimised structure).
DESIGN: tuple[RunSpec, ...] = (
    *(RunSpec("calibration", 325.0, s) for s in (11, 12, 13)),
    *(RunSpec("calibration", 550.0, s) for s in (11, 12, 13)),
    *(RunSpec("check", 350.0, s) for s in (21, 22, 23, 24, 25, 26)),
    *(RunSpec("check", 650.0, s) for s in (21, 22)),
)


def _key(spec: RunSpec) -> str:
    return f"{spec.role}_{spec.temperature:g}K_s{spec.seed}"


def load_runs(path: str | Path = DEFAULT_PATH, role: str | None = None) -> list[dict]:
    """The runs of a file made by :func:`make_runs`.

    Args:
        path: The ``.npz`` file.
        role: Keep only this role (``"calibration"`` or ``"check"``).

    Returns:
        Dicts with ``role``, ``temperature``, ``seed``, ``length_ps``, ``frame_ps``,
        ``phi`` and ``psi`` (``n_frames`` float64 arrays, degrees), ``wall_s``.
    """
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        out = []
        for key, info in meta["runs"].items():
            if role is not None and info["role"] != role:
                continue
            angles = data[key].astype(np.float64)
            out.append({**info, "phi": angles[:, 0], "psi": angles[:, 1]})
    return out


def make_runs(out: Path, design: tuple[RunSpec, ...] = DESIGN, progress: bool = True) -> Path:
    """Run every missing run of ``design`` and write them all to ``out``."""
    from sciwm.md.engine import RunConfig, simulate
    from sciwm.md.systems import SystemSpec, system_meta

    spec = SystemSpec()
    dih = system_meta(spec)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"runs": {}, "system": "alanine dipeptide, amber14, vacuum", "frame_ps": 1.0}
    if out.is_file():
        with np.load(out) as old:
            meta = json.loads(str(old["meta"]))
            arrays = {k: old[k] for k in old.files if k != "meta"}
    for run in design:
        key = _key(run)
        if key in arrays:
            continue
        cfg = RunConfig(
            temperature=run.temperature,
            length_ps=run.length_ps,
            frame_ps=1.0,
            equilibrate_ps=20.0,
            seed=run.seed,
        )
        t0 = time.perf_counter()
        res = simulate(spec, cfg)
        pos = res["positions"]
        angles = np.stack([dihedral(pos, dih["phi"]), dihedral(pos, dih["psi"])], -1)
        arrays[key] = angles.astype(np.float16)
        meta["runs"][key] = {
            "role": run.role,
            "temperature": run.temperature,
            "seed": run.seed,
            "length_ps": run.length_ps,
            "frame_ps": 1.0,
            "wall_s": float(res["wall_s"]),
            "platform": res["platform"],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, meta=json.dumps(meta), **arrays)
        if progress:
            print(f"{key}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    make_runs(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
