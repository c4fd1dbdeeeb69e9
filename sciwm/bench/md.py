"""MD benchmark: the MD world model against long reference OpenMM runs and two baselines.

Every figure of the world model comes from the ``md_emulator`` world model
(:class:`surrogates.md.world_model.MDEmulatorWorldModel`) built as the shipped MD campaign
(``sciwm/examples/md_campaign.toml``) builds it, from that file's search space and
``[world_model.settings]``, and asked through its public methods: :meth:`emulate` for the
emulator's rollouts, :meth:`fit` and :meth:`posterior` for the property head. So the numbers
are what a campaign gets.

Protocol, at every temperature of the data set (training ones and the held-out one):

* **reference** — the independent OpenMM runs of the data set (role ``reference``, never
  trained on), 10 ns each, pooled (three runs at 500 and 600 K, two at 450 K, where the
  rare φ > 0 basin needs them);
* **sciwm** — the world model's emulator rollouts (``emulate``: the ensemble, trajectories
  spread over its members) from 16 configurations of the first reference run taken at evenly
  spaced times, each rolled forward as long as one reference run (10 ns; ``--quick``: 2 ns)
  in jumps of τ = 100 ps, all 16 in one batch, each jump followed by the corrector
  (:mod:`surrogates.md.relax`: 0.3 ps of real Langevin dynamics from the network's sample,
  2 fs steps like the reference engine, its time counted in the emulator's). Populations and
  their std are the world model's estimates (``emulate``'s ``mean``/``std``).
  ``sciwm_no_relax``: the same world model with ``relax_ps = 0`` (the network's frames
  alone); ``sciwm_tau10``: with the corrector, τ = 10 ps over a tenth of the time;
* **openmm_same_cost** — real OpenMM runs from the same starts whose total wall time equals
  the emulator's (``sciwm``), on the fastest engine for this system (Reference platform in vacuum);
* **property_head** — the world model's property head after ``fit([], [])``, as a campaign
  has it before its first real result: Bayesian quadratic regression in temperature
  conditioned on the emulator's rollouts over the campaign's temperature grid; its posterior
  (``posterior``, the latent population, without a real run's sampling noise) at each
  temperature. Populations and intervals from the conditions alone, no configurations (so no
  JSD, no validity);
* **property_head_real** — the same head after ``fit`` on real results too: the data set's
  training runs cut into runs of the campaign's longest length (500 ps), as completed
  experiments (their cost the runs' measured OpenMM time), as a campaign that ran them;
* **reference_noise** — what two independent real runs disagree by: the training run against
  the pooled reference at training temperatures; at held-out ones, the first reference
  run against the others. This is the floor any method's JSD can be compared with.

Metrics (rows as in DESIGN.md, with ``temperature`` and ``split``): ``jsd_phi``, ``jsd_psi``
(50 bins), ``jsd_phipsi`` (25 x 25 bins) in nats; ``basin_mae`` (mean absolute error of the
three basin populations); ``valid_fraction`` (frames the emulator emits — after its
constraint step, as an MD engine's SHAKE — whose every bond is within 10 % of the force
field's length and whose stereocentres are those of the start); ``valid_fraction_raw`` (the
same test on the network's first raw sample of every jump, before resampling and
projection); ``rejected_fraction`` (jumps whose every resample failed that test after the
constraint step, so the trajectory stayed in place); ``coverage90`` (fraction
of the three populations whose 90 % interval contains the reference value; the emulator's
interval scale is calibrated leave-one-temperature-out on the training temperatures, the
property head's posterior is used as it is);
``tau_ps``; ``time_compression`` (OpenMM wall time for the emulated simulated time, at the
throughput measured in the same-cost runs, over the emulator's wall time; both on this
machine's CPU, one thread each); ``simulated_ps`` (total simulated time of a method).

The world model under test is built in :mod:`sciwm.bench.md_world_model`; the frame metrics
(dihedrals, JSD, basins) are in :mod:`sciwm.bench.md_metrics`. The ``sciwm_predict_*`` rows
(:mod:`sciwm.bench.md_predict`) are the world model's ``predict`` answers — what a campaign and
``sciwm predict`` get — against held-out real runs, including the check runs at 350 K
(between training temperatures) and 650 K (beyond them).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciwm.bench.common import env_info, make_result, print_table, save_result
from sciwm.bench.md_metrics import angles, block_pops, compare
from sciwm.bench.md_predict import LENGTHS as PREDICT_LENGTHS
from sciwm.bench.md_predict import all_rows, predict_model
from sciwm.bench.md_predict import real_runs as real_runs_by_condition
from sciwm.bench.md_world_model import CAMPAIGN, property_head, real_results, world_models
from sciwm.md.observables import BASINS

Z90 = 1.6448536269514722
METRICS = (
    "jsd_phi",
    "jsd_psi",
    "jsd_phipsi",
    "basin_mae",
    "valid_fraction",
    "valid_fraction_raw",
    "coverage90",
    "tau_ps",
    "time_compression",
)


def _openmm_runs(
    starts: np.ndarray, temperature: float, length_ps: float, seed: int
) -> tuple[np.ndarray, float, int]:
    """Short real runs from each start; returns frames, wall seconds and steps."""
    from sciwm.md.engine import RunConfig, simulate
    from sciwm.md.systems import SystemSpec

    frame_ps = min(1.0, length_ps)
    frames, wall, steps = [], 0.0, 0
    for k, x in enumerate(starts):
        cfg = RunConfig(
            temperature=temperature,
            length_ps=length_ps,
            frame_ps=frame_ps,
            equilibrate_ps=0.0,
            seed=seed * 1000 + k,
        )
        out = simulate(SystemSpec(), cfg, start=(x, None))
        frames.append(out["positions"])
        wall += out["wall_s"]
        steps += out["n_steps"]
    return np.concatenate(frames), wall, steps


def run(
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    progress: bool = True,
    relax_ps: float | None = None,
) -> dict[str, Any]:
    """Run the MD suite, print its table and write the result (see the module doc).

    Args:
        quick: A fifth of the simulated time per temperature (a few minutes).
        seeds: Rollout noise seeds per temperature (default 1).
        out: Result JSON path (optional).
        progress: Print progress lines.
        relax_ps: The corrector's simulated time per jump (default: the campaign's
            ``relax_ps``, else :class:`surrogates.md.relax.RelaxConfig`'s).

    Returns:
        The result dict ``{"suite": "md", "rows": [...], "config": {...}, "env": {...}}``.
    """
    from surrogates.md.data import load_dataset

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    data = load_dataset()
    model, no_relax, settings, space = world_models(relax_ps)
    emulation = model.emulation
    molecule = emulation.models[0].molecule
    n_seeds = int(seeds or 1)
    n_starts = 16
    design = data.meta["design"]
    l_ref_ps = float(design["length_ns"]) * 1000.0  # one reference run
    l_traj_ps = l_ref_ps / 5 if quick else l_ref_ps  # per emulated trajectory
    taus = {"sciwm": 100.0, "sciwm_no_relax": 100.0, "sciwm_tau10": 10.0}
    traj_ps = {"sciwm": l_traj_ps, "sciwm_no_relax": l_traj_ps, "sciwm_tau10": l_traj_ps / 10}
    models = {"sciwm": model, "sciwm_no_relax": no_relax, "sciwm_tau10": model}
    relax_cfg = model.cfg.relax_config
    temps = [(t, "train") for t in data.train_temperatures] + [
        (t, "heldout") for t in data.heldout_temperatures
    ]

    def log(msg: str) -> None:
        if progress:
            print(f"[md {time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    # the property head: as a campaign has it before any real result, then after real runs
    all_t = [t for t, _ in temps]
    t_fit = time.perf_counter()
    model.fit([], [])
    fit_s = time.perf_counter() - t_fit
    heads = {"property_head": property_head(model, space, all_t)}
    experiments, observations = real_results(data, molecule, space, model)
    model.fit(experiments, observations)
    heads["property_head_real"] = property_head(model, space, all_t)
    log(f"world model fitted ({fit_s:.1f} s for the emulated grid)")

    rows: list[dict[str, Any]] = []
    raw: dict[tuple[float, str], dict[str, Any]] = {}
    for temperature, split in temps:
        ref_runs = data.select(role="reference", temperature=temperature)
        ref_x = np.concatenate([t.positions.numpy() for t in ref_runs])
        ref = angles(ref_x, molecule)
        first = ref_runs[0].positions.numpy()
        idx = np.linspace(0, len(first) - 1, n_starts).astype(int)
        starts = first[idx]
        problem = f"alanine_vacuum@{temperature:g}K"
        base = {"problem": problem, "temperature": temperature, "split": split}
        res: dict[str, Any] = {}
        for method, tau in taus.items():
            n_jumps = max(1, int(round(traj_ps[method] / tau)))
            stats = []
            for seed in range(n_seeds):
                est = models[method].emulate(
                    temperature,
                    length_ps=traj_ps[method],
                    tau_ps=tau,
                    start=torch.from_numpy(starts),
                    seed=seed,
                )
                roll = est["rollout"]
                x = roll.positions[1:].reshape(-1, molecule.n_atoms, 3).numpy()
                phi, psi = angles(x, molecule)
                cmp = compare(phi, psi, ref)
                cmp.update(
                    pops={b: est["mean"][f"pop_{b}"] for b in BASINS},
                    valid_fraction=float(roll.valid.float().mean()),
                    valid_fraction_raw=float(roll.raw_valid.float().mean()),
                    rejected_fraction=float(roll.rejected.float().mean()),
                    relaxed_fraction=(
                        float(roll.relaxed.float().mean()) if roll.relaxed is not None else 0.0
                    ),
                    wall_s=roll.wall_s,
                    std=np.array([est["std"][f"pop_{b}"] for b in BASINS]),
                    n_frames=len(phi),
                )
                stats.append(cmp)
            res[method] = {
                key: float(np.mean([s[key] for s in stats]))
                for key in (
                    "jsd_phi",
                    "jsd_psi",
                    "jsd_phipsi",
                    "basin_mae",
                    "valid_fraction",
                    "valid_fraction_raw",
                    "rejected_fraction",
                    "relaxed_fraction",
                    "wall_s",
                    "n_frames",
                )
            }
            res[method]["pops"] = np.mean([[s["pops"][b] for b in BASINS] for s in stats], 0)
            res[method]["std"] = np.mean([s["std"] for s in stats], 0)
            res[method]["tau_ps"] = tau
            res[method]["simulated_ps"] = n_jumps * tau * n_starts
            log(
                f"{problem} {method}: {res[method]['wall_s']:.1f} s, "
                f"jsd_phi {res[method]['jsd_phi']:.3f}"
            )
        # same-cost OpenMM from the same starts
        emu_wall = res["sciwm"]["wall_s"]
        probe_x, probe_wall, probe_steps = _openmm_runs(starts[:1], temperature, 20.0, 99)
        s_per_ps = probe_wall / (probe_steps * 0.002)
        per_start_ps = max(0.002, emu_wall / n_starts / s_per_ps)
        om_x, om_wall, om_steps = _openmm_runs(starts, temperature, per_start_ps, 7)
        s_per_ps = (om_wall + probe_wall) / ((om_steps + probe_steps) * 0.002)
        om = compare(*angles(om_x, molecule), ref)
        om_pops = np.array([om["pops"][b] for b in BASINS])
        res["openmm_same_cost"] = {
            **om,
            "pops": om_pops,
            "wall_s": om_wall,
            "sim_ps": per_start_ps * n_starts,
        }
        for method in taus:
            res[method]["time_compression"] = (
                s_per_ps * res[method]["simulated_ps"] / res[method]["wall_s"]
            )
        for head, answers in heads.items():
            res[head] = answers[temperature]
        # reference noise floor
        if split == "train":
            other = data.select(role="train", temperature=temperature)[0].positions.numpy()
            noise = compare(*angles(other, molecule), ref)
        elif len(ref_runs) > 1:
            rest = np.concatenate([t.positions.numpy() for t in ref_runs[1:]])
            noise = compare(*angles(first, molecule), angles(rest, molecule))
        else:
            half = len(ref_x) // 2
            noise = compare(*angles(ref_x[:half], molecule), (ref[0][half:], ref[1][half:]))
        res["reference_noise"] = noise
        res["ref_pops"] = np.array(list(compare(*ref, ref)["pops"].values()))
        res["ref_block_std"] = block_pops(*ref, blocks=10 * len(ref_runs)).std(0, ddof=1) / (
            math.sqrt(10 * len(ref_runs))
        )
        rows.append(
            {
                **base,
                "method": "reference",
                "metric": "reference_ns",
                "value": len(ref_x) * ref_runs[0].frame_ps / 1000.0,
            }
        )
        res["s_per_ns"] = s_per_ps * 1000.0
        raw[(temperature, split)] = res
        for method in (*taus, "openmm_same_cost", "reference_noise"):
            r = res[method]
            for metric in ("jsd_phi", "jsd_psi", "jsd_phipsi", "basin_mae"):
                rows.append({**base, "method": method, "metric": metric, "value": r[metric]})
        for method in taus:
            for metric in (
                "valid_fraction",
                "valid_fraction_raw",
                "rejected_fraction",
                "relaxed_fraction",
                "tau_ps",
                "time_compression",
                "simulated_ps",
            ):
                rows.append(
                    {**base, "method": method, "metric": metric, "value": res[method][metric]}
                )
        for head in heads:
            mae = float(np.mean(np.abs(res[head]["pops"] - res["ref_pops"])))
            rows.append({**base, "method": head, "metric": "basin_mae", "value": mae})
        rows.append(
            {
                **base,
                "method": "openmm_same_cost",
                "metric": "simulated_ps",
                "value": res["openmm_same_cost"]["sim_ps"],
            }
        )

    # coverage: emulator scale calibrated leave-one-temperature-out on training temperatures
    def z_scores(method: str, key: tuple[float, str]) -> np.ndarray:
        r = raw[key]
        total = np.sqrt(r[method]["std"] ** 2 + r["ref_block_std"] ** 2) + 1e-9
        return np.abs(r[method]["pops"] - r["ref_pops"]) / total

    calibration: dict[str, float] = {}
    for method in (*taus, *heads):
        train_keys = [k for k in raw if k[1] == "train"]
        all_z = np.concatenate([z_scores(method, k) for k in train_keys])
        calibration[method] = max(1.0, float(np.quantile(all_z, 0.9)) / Z90)
        for key in raw:
            others = [k for k in train_keys if k != key] or train_keys
            zo = np.concatenate([z_scores(method, k) for k in others])
            scale = max(1.0, float(np.quantile(zo, 0.9)) / Z90)
            if method in heads:
                scale = 1.0  # its posterior is used as it is
            cov = float(np.mean(z_scores(method, key) <= Z90 * scale))
            rows.append(
                {
                    "problem": f"alanine_vacuum@{key[0]:g}K",
                    "temperature": key[0],
                    "split": key[1],
                    "method": method,
                    "metric": "coverage90",
                    "value": cov,
                }
            )
    # the product path: predict of the campaign's world model against held-out real runs
    t_pred = time.perf_counter()
    pmodel = predict_model()
    rows += all_rows(pmodel, real_runs_by_condition(data, molecule))
    log(f"predict rows ({time.perf_counter() - t_pred:.1f} s)")
    config = {
        "quick": quick,
        "predict": {
            "lengths_ps": list(PREDICT_LENGTHS),
            "sources": pmodel.answer_sources,
        },
        "seeds": n_seeds,
        "n_starts": n_starts,
        "reference_ps": l_ref_ps,
        "emulated_ps_per_trajectory": traj_ps,
        "taus_ps": taus,
        "ensemble_members": len(emulation.models),
        "checkpoint": str(model.cfg.checkpoint),
        "checkpoint_train": emulation.meta.get("train"),
        "world_model": {
            "campaign": str(CAMPAIGN.relative_to(CAMPAIGN.parents[2])),
            "settings": settings,
            "calibration": model.calibration,
            "fit_s": fit_s,
            "real_results": len(experiments),
        },
        "calibration_all_train": calibration,
        "openmm_s_per_ns": {f"{k[0]:g}": v["s_per_ns"] for k, v in raw.items()},
        "jsd": "nats; 50 bins per angle, 25x25 for (phi, psi)",
        "engine": "OpenMM Reference platform, amber14 vacuum, 2 fs, Langevin 1/ps",
        "corrector": {
            "methods": [m for m, wm in models.items() if wm.cfg.relax_config.n_steps > 0],
            "length_ps": relax_cfg.length_ps,
            "timestep_fs": relax_cfg.timestep_fs,
            "friction_per_ps": relax_cfg.friction_per_ps,
            "ode_steps": relax_cfg.ode_steps,
        },
        "wall_s": time.perf_counter() - t_start,
    }
    result = make_result("md", rows, config, env_info())
    if out is not None:
        save_result(out, result)
    print_table(rows, metrics=[*METRICS, "simulated_ps", "interval_width90", "in_range"])
    return result
