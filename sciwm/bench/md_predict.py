"""The MD benchmark's ``predict`` rows: the shipped world model's answers against real runs.

The world model is ``md_emulator`` built from ``sciwm/examples/md_campaign.toml`` (its
``[world_model.settings]``, its temperature range; the run length allowed up to 2 ns so that
the benchmark can ask for runs as long as the ones it compares with), fitted with no real
result (``fit([], [])``, as a campaign has it before its first run), and asked through
``predict`` — the path ``sciwm predict`` and the agent take.

Held-out conditions, never trained or calibrated on:

* ``heldout`` 450 K: the data set's two independent 10 ns reference runs there;
* ``check`` 350 K (between training temperatures) and 650 K (beyond them): the shipped check
  runs of :mod:`sciwm.md.calibration_runs` (six and two 2 ns runs);
* ``train`` 300/400/500/600 K: the data set's reference runs (independent seeds of the
  training temperatures).

Each real run is cut into runs of the asked length (0.5 and 2 ns). Metrics, per temperature
and length (``method = "sciwm_predict_<length>ps"``): ``basin_mae`` (mean absolute error of
the three predicted populations against the populations of all real runs at that
temperature pooled),
``coverage90`` (fraction of (run, population) pairs inside the 90 % interval),
``interval_width90``, ``in_range`` (1 when every interval lies in [0, 1] and the means sum to
one), ``answer_ms`` (wall time per answer).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sciwm.bench.md_world_model import CAMPAIGN
from sciwm.md.observables import BASINS, basin_labels

#: Lengths (ps) of the runs asked about.
LENGTHS = (500.0, 2000.0)


def predict_model(highest_temperature: float | None = None) -> Any:
    """The campaign's world model on its space with lengths up to 2 ns (and temperatures up
    to ``highest_temperature``, for questions beyond the campaign's range), fitted on
    nothing."""
    from sciwm.space import Parameter, SearchSpace
    from sciwm.spec import load_spec
    from surrogates.md.world_model import MDEmulatorWorldModel

    spec = load_spec(CAMPAIGN)
    space = spec.space()
    t_name = str(spec.world_model.settings.get("temperature", "temperature"))
    params = []
    for p in space.parameters:
        if p.fidelity and p.kind == "float":
            p = Parameter(p.name, p.kind, p.low, max(float(p.high), max(LENGTHS)), p.log, (), True)
        if p.name == t_name and highest_temperature is not None:
            p = Parameter(p.name, p.kind, p.low, max(float(p.high), highest_temperature), p.log)
        params.append(p)
    model = MDEmulatorWorldModel(
        SearchSpace(tuple(params)), [f"pop_{b}" for b in BASINS], **spec.world_model.settings
    )
    model.fit([], [])
    return model


def real_runs(data: Any, molecule: Any) -> dict[tuple[float, str], list[np.ndarray]]:
    """Basin labels per frame (1 ps apart) of every held-out real run, by (temperature, split)."""
    from sciwm.bench.md_metrics import angles
    from sciwm.md.calibration_runs import DEFAULT_PATH, load_runs

    out: dict[tuple[float, str], list[np.ndarray]] = {}
    heldout = set(data.heldout_temperatures)
    for traj in data.select(role="reference"):
        split = "heldout" if traj.temperature in heldout else "train"
        phi, psi = angles(traj.positions.numpy(), molecule)
        out.setdefault((traj.temperature, split), []).append(basin_labels(phi, psi))
    if DEFAULT_PATH.is_file():
        for run in load_runs(DEFAULT_PATH, role="check"):
            labels = basin_labels(run["phi"], run["psi"])
            out.setdefault((float(run["temperature"]), "check"), []).append(labels)
    return out


def predict_rows(model: Any, runs: dict[tuple[float, str], list[np.ndarray]]) -> list[dict]:
    """The rows of the module doc for ``model`` against ``runs``."""
    rows: list[dict[str, Any]] = []
    for (temperature, split), labels in sorted(runs.items()):
        pooled = np.concatenate(labels)
        truth = np.array([np.mean(pooled == k) for k in range(len(BASINS))])
        for length in LENGTHS:
            params = {p.name: p.low for p in model.space.parameters}
            params.update({model.t_name: temperature, model.l_name: length})
            t0 = time.perf_counter()
            (pred,) = model.predict([params])
            ms = (time.perf_counter() - t0) * 1000.0
            ests = [pred.outcomes[f"pop_{b}"] for b in BASINS]
            blocks = [
                [np.mean(run[i : i + int(length)] == k) for k in range(len(BASINS))]
                for run in labels
                for i in range(0, len(run) - int(length) + 1, int(length))
            ]
            hits = [e.contains(float(b[k])) for b in blocks for k, e in enumerate(ests)]
            mean = np.array([e.mean for e in ests])
            valid = all(0.0 <= e.lower <= e.mean <= e.upper <= 1.0 for e in ests) and bool(
                abs(mean.sum() - 1.0) < 1e-9
            )
            base = {
                "problem": f"alanine_vacuum@{temperature:g}K",
                "method": f"sciwm_predict_{length:g}ps",
                "temperature": temperature,
                "split": split,
                "length_ps": length,
                "extrapolating": pred.extrapolating,
            }
            values = {
                "basin_mae": float(np.mean(np.abs(mean - truth))),
                "coverage90": float(np.mean(hits)),
                "interval_width90": float(np.mean([e.upper - e.lower for e in ests])),
                "in_range": float(valid),
                "answer_ms": ms,
                "n_real_runs": float(len(blocks)),
            }
            rows += [{**base, "metric": k, "value": v} for k, v in values.items()]
    return rows


def all_rows(model: Any, runs: dict[tuple[float, str], list[np.ndarray]]) -> list[dict]:
    """:func:`predict_rows` of ``model`` inside its temperature range, and of the same model
    on a space stretched to the hottest run for the runs beyond it."""
    hi = float(model.space[model.t_name].high)
    inside = {k: v for k, v in runs.items() if k[0] <= hi}
    beyond = {k: v for k, v in runs.items() if k[0] > hi}
    rows = predict_rows(model, inside)
    if beyond:
        rows += predict_rows(predict_model(max(t for t, _ in beyond)), beyond)
    return rows


def run(progress: bool = True) -> list[dict]:
    """Build the model, read the runs and return the rows (``python -m sciwm.bench.md_predict``)."""
    from sciwm.bench.common import print_table
    from surrogates.md.data import load_dataset

    data = load_dataset()
    t0 = time.perf_counter()
    model = predict_model()
    if progress:
        print(f"[md predict] world model fitted in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = all_rows(model, real_runs(data, model.emulation.models[0].molecule))
    if progress:
        print_table(rows, metrics=["basin_mae", "coverage90", "interval_width90", "in_range"])
    return rows


if __name__ == "__main__":
    import json
    import sys

    result = run()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as fh:
            json.dump(result, fh, indent=1)
