"""The world model the MD benchmark measures: the shipped MD campaign's, built as it builds it.

:func:`world_models` builds ``md_emulator`` from ``sciwm/examples/md_campaign.toml`` (its
search space and ``[world_model.settings]``); :func:`property_head` reads its property head
through :meth:`posterior`; :func:`real_results` turns the data set's training runs into the
completed experiments a campaign that ran them would hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sciwm.bench.md_metrics import angles
from sciwm.md.observables import BASINS, basin_populations

#: The campaign whose world model is measured.
CAMPAIGN = Path(__file__).resolve().parents[1] / "examples" / "md_campaign.toml"


def world_models(relax_ps: float | None) -> tuple[Any, Any, dict[str, Any], Any]:
    """The campaign's world model (and one without the corrector), its settings and space.

    Args:
        relax_ps: The corrector's simulated time per jump, or ``None`` for the campaign's.

    Returns:
        ``(model, no_relax, settings, space)``: the unfitted ``MDEmulatorWorldModel``, the same
        with ``relax_ps = 0``, the settings it was built with and the campaign's search space.
    """
    from sciwm.spec import load_spec
    from surrogates.md.world_model import MDEmulatorWorldModel

    spec = load_spec(CAMPAIGN)
    space = spec.space()
    settings = dict(spec.world_model.settings)
    if relax_ps is not None:
        settings["relax_ps"] = relax_ps
    outcomes = [f"pop_{b}" for b in BASINS]
    model = MDEmulatorWorldModel(space, outcomes, **settings)
    no_relax = MDEmulatorWorldModel(space, outcomes, **{**settings, "relax_ps": 0.0})
    return model, no_relax, settings, space


def property_head(model: Any, space: Any, temperatures: list[float]) -> dict[float, dict]:
    """The world model's posterior of the three populations at each temperature.

    Args:
        model: A fitted ``MDEmulatorWorldModel``.
        space: The campaign's search space (other parameters at their lower bound, the run
            length at its longest).
        temperatures: Temperatures (K) to ask at.

    Returns:
        ``{temperature: {"pops": 3 array, "std": 3 array}}``, the latent posterior mean and
        std of the populations of :data:`~sciwm.md.observables.BASINS`.
    """
    length = space[model.l_name].high if model.l_dim is not None else None
    out = {}
    for t in temperatures:
        params = {p.name: p.low for p in space.parameters}
        params[model.t_name] = t
        if length is not None:
            params[model.l_name] = length
        X = space.encode([params]).double()
        mean, std = [], []
        for b in BASINS:
            post = model.posterior(X, f"pop_{b}")
            mean.append(float(post.mean.reshape(-1)[0]))
            std.append(float(post.variance.reshape(-1)[0].clamp_min(0).sqrt()))
        out[t] = {"pops": np.array(mean), "std": np.array(std)}
    return out


def real_results(data: Any, molecule: Any, space: Any, model: Any) -> tuple[list, list]:
    """The training runs as completed experiments of the campaign's longest length.

    Args:
        data: The MD data set (``surrogates.md.data.load_dataset()``).
        molecule: The emulator's molecule (its φ/ψ atoms).
        space: The campaign's search space.
        model: The world model (its temperature and length parameter names).

    Returns:
        ``(experiments, observations)``: one completed experiment per whole run length of each
        training trajectory, its outcomes the basin populations, its cost the run's OpenMM time.
    """
    from sciwm.experiment import Experiment, Observation, Status

    length_ps = float(space[model.l_name].high) if model.l_dim is not None else 1000.0
    experiments, observations = [], []
    for traj in data.select(role="train"):
        per_run = max(1, int(round(length_ps / traj.frame_ps)))
        phi, psi = angles(traj.positions.numpy(), molecule)
        for k in range(len(phi) // per_run):
            sl = slice(k * per_run, (k + 1) * per_run)
            pops = basin_populations(phi[sl], psi[sl])
            params = {p.name: p.low for p in space.parameters}
            params[model.t_name] = traj.temperature
            if model.l_dim is not None:
                params[model.l_name] = length_ps
            exp = Experiment.create("md-bench", len(experiments), params)
            experiments.append(exp)
            observations.append(
                Observation(
                    exp.id,
                    Status.COMPLETED,
                    {f"pop_{b}": pops[b] for b in BASINS},
                    cost=traj.openmm_s_per_ns * length_ps / 1000.0,
                )
            )
    return experiments, observations
