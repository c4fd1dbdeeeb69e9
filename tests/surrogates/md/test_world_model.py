"""MDEmulatorWorldModel: the world-model conformance suite plus MD-specific behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sciwm.errors import WorldModelError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.space import Parameter, SearchSpace
from sciwm.testing.world_model_suite import CalibrationCase, WorldModelConformance, make_data
from surrogates.md.world_model import DEFAULT_CHECKPOINT, MDEmulatorWorldModel

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no emulator checkpoint"),
]

#: Small settings so a fit (with its emulator rollouts) takes a couple of seconds.
FAST = {"grid": 3, "n_trajectories": 4, "tau_ps": 100.0, "rollout_ps": 200.0}


def md_space() -> SearchSpace:
    return SearchSpace(
        (
            Parameter("temperature", "float", 300.0, 600.0),
            Parameter("length_ps", "float", 10.0, 1000.0, log=True, fidelity=True),
        )
    )


def _real_runs() -> list[tuple[float, torch.Tensor, float, float]]:
    """Real OpenMM runs the emulator never trained on: ``(K, frames x PER_FRAME values,
    wall s per ns, ps per frame)``; the reference runs (10 ns, 300-600 K) and the 2 ns check
    runs at 350 K."""
    from sciwm.md.calibration_runs import DEFAULT_PATH, load_runs
    from sciwm.md.observables import PER_FRAME, frame_values
    from sciwm.md.torch_ops import frame_observables
    from surrogates.md.data import load_dataset

    data = load_dataset()
    basins = tuple(float(v) for v in data.meta["basins"]["alpha_r_psi"])
    runs = []
    for tr in data.select(role="reference"):
        values = frame_observables(tr.positions, data.molecule, basins)
        frames = torch.stack([torch.as_tensor(values[n]).double() for n in PER_FRAME], -1)
        runs.append((tr.temperature, frames, tr.openmm_s_per_ns, tr.frame_ps))
    for r in load_runs(DEFAULT_PATH, role="check") if DEFAULT_PATH.is_file() else []:
        if 300.0 <= r["temperature"] <= 600.0:
            v = frame_values(r["phi"], r["psi"])
            frames = torch.from_numpy(np.stack([v[n] for n in PER_FRAME], -1))
            wall = r["wall_s"] / (r["length_ps"] / 1000.0)
            runs.append((float(r["temperature"]), frames, wall, float(r["frame_ps"])))
    return runs


def real_md_case(outcomes: list[str]) -> CalibrationCase:
    """The MD emulator's known distribution is the real system's: a question at temperature
    T for a run of L ps is answered by a random L ps stretch of an independent real run at T
    (reference and check runs, never trained on), its cost that run's wall time for L ps."""
    from sciwm.md.observables import PER_FRAME

    runs = _real_runs()
    temps = sorted({r[0] for r in runs})

    def generate(n: int, seed: int) -> tuple[list[Experiment], list[Observation]]:
        g = np.random.default_rng(seed)
        experiments, observations = [], []
        for i in range(n):
            t = temps[int(g.integers(len(temps)))]
            length = float(np.exp(g.uniform(math.log(100.0), math.log(2000.0))))
            pool = [r for r in runs if r[0] == t]
            _, frames, s_per_ns, frame_ps = pool[int(g.integers(len(pool)))]
            b = int(round(length / frame_ps))
            start = int(g.integers(0, frames.shape[0] - b + 1))
            y = frames[start : start + b].mean(0)
            e = Experiment.create(
                f"md-calibration-{seed}", i, {"temperature": t, "length_ps": length}
            )
            values = {name: float(y[PER_FRAME.index(name)]) for name in outcomes}
            experiments.append(e)
            observations.append(
                Observation(e.id, Status.COMPLETED, values, cost=s_per_ns * length / 1000.0)
            )
        return experiments, observations

    ranges = {n: (0.0, 1.0) if n.startswith("pop_") else (-1.0, 1.0) for n in outcomes}
    space = SearchSpace(
        (
            Parameter("temperature", "float", 300.0, 600.0),
            Parameter("length_ps", "float", 100.0, 2000.0, log=True, fidelity=True),
        )
    )
    return CalibrationCase(
        generate, ranges, n_train=0, n_test=400, seeds=(100, 101), space=space, outcomes=outcomes
    )


class TestMDEmulatorConformance(WorldModelConformance):
    n_train = 8

    @pytest.fixture(scope="class")
    def model_factory(self):
        return lambda space, outcomes: MDEmulatorWorldModel(space, outcomes, **FAST)

    @pytest.fixture(scope="class")
    def space(self) -> SearchSpace:
        return md_space()

    @pytest.fixture(scope="class")
    def outcome_names(self) -> list[str]:
        return ["pop_alpha_r", "pop_beta"]

    @pytest.fixture(scope="class")
    def calibration_case(self) -> CalibrationCase:
        return real_md_case(["pop_beta", "pop_alpha_r", "pop_alpha_l"])

    @pytest.mark.xfail(
        strict=True,
        reason="known miss (issue 10): on real runs the conformal intervals are too wide "
        "(seeds 100-101: pop_beta 0.99, pop_alpha_r 0.96, pop_alpha_l 0.95 of 800 draws) "
        "and cost too narrow (0.83); the scores pool leave-one-temperature-out errors at "
        "400/500 K (where alpha_L is unconverged) with every other condition",
    )
    def test_intervals_calibrated_on_a_known_distribution(
        self, model_factory, space, outcome_names, calibration_case
    ) -> None:
        super().test_intervals_calibrated_on_a_known_distribution(
            model_factory, space, outcome_names, calibration_case
        )


def test_emulator_only_prediction_is_physical() -> None:
    """With no real data, predictions come from the emulator: populations in [0, 1]."""
    model = MDEmulatorWorldModel(md_space(), ["pop_alpha_r", "pop_beta", "pop_alpha_l"], **FAST)
    model.fit([], [])
    preds = model.predict([{"temperature": 350.0, "length_ps": 1000.0}])
    pops = {k: e.mean for k, e in preds[0].outcomes.items()}
    assert sum(pops.values()) == pytest.approx(1.0, abs=1e-9)
    for length in (10.0, 100.0, 1000.0):
        for t in (300.0, 333.0, 450.0, 600.0):
            (p,) = model.predict([{"temperature": t, "length_ps": length}])
            assert sum(e.mean for e in p.outcomes.values()) == pytest.approx(1.0, abs=1e-9)
            assert all(0.0 <= e.lower <= e.mean <= e.upper <= 1.0 for e in p.outcomes.values())
            assert "answered in" in p.notes[-1]
    assert preds[0].cost.mean > 0 and not preds[0].extrapolating
    # shorter real runs are noisier: wider intervals at 10 ps than at 1 ns
    short = model.predict([{"temperature": 350.0, "length_ps": 10.0}])[0]
    assert short.outcomes["pop_beta"].std > preds[0].outcomes["pop_beta"].std
    # cost grows with the simulated length
    assert short.cost.mean < preds[0].cost.mean
    # the run noise the agent weighs fidelities by: falls with the length
    X = model.space.encode([{"temperature": 350.0, "length_ps": v} for v in (10.0, 40.0, 1000.0)])
    noise = model.observation_std(X, "pop_beta")
    assert noise is not None and noise.shape == (3,)
    assert noise[0] >= noise[1] > noise[2] > 0
    if all(0.005 < float(v) < 0.5 for v in noise[:2]):  # neither clamped
        # from the real runs' block means: correlated frames make the noise fall more slowly
        # than 1/sqrt(length) (4x the length: std / 2 at most)
        assert 1.0 < float(noise[0] / noise[1]) <= 2.0 + 1e-9
    assert model.observation_std(X, "energy_mean") is None


def test_emulate_reports_rollout_and_validity() -> None:
    model = MDEmulatorWorldModel(md_space(), ["pop_beta"], **FAST)
    est = model.emulate(400.0, n_trajectories=3, length_ps=200.0)
    assert est["rollout"].positions.shape == (3, 3, 22, 3)
    assert 0.0 <= est["valid_fraction"] <= 1.0
    assert set(est["mean"]) >= {"pop_beta", "pop_alpha_r", "pop_alpha_l"}


def test_outcome_the_emulator_cannot_compute_needs_real_data() -> None:
    model = MDEmulatorWorldModel(md_space(), ["energy_mean"], grid=0)
    with pytest.raises(WorldModelError, match="energy_mean"):
        model.fit([], [])
    exps, obs = make_data(md_space(), ["energy_mean"], 5, 0)
    model.fit(exps, obs)
    assert model.predict([exps[0].parameters])[0].outcomes["energy_mean"].std > 0


def test_bad_settings_and_spaces() -> None:
    with pytest.raises(WorldModelError, match="unknown setting"):
        MDEmulatorWorldModel(md_space(), ["pop_beta"], colour="red")
    no_temp = SearchSpace((Parameter("x", "float", 0.0, 1.0),))
    with pytest.raises(WorldModelError, match="temperature"):
        MDEmulatorWorldModel(no_temp, ["pop_beta"])
    with pytest.raises(WorldModelError, match="checkpoint"):
        MDEmulatorWorldModel(md_space(), ["pop_beta"], checkpoint="/nonexistent.pt").fit([], [])


def test_settings_are_typed_and_checked() -> None:
    """The settings read into MDEmulatorSettings (campaign name relax_ps for the corrector)."""
    import tomllib

    from surrogates.md.settings import MDEmulatorSettings

    assert MDEmulatorWorldModel.settings_type is MDEmulatorSettings
    shipped = Path(__file__).resolve().parents[3] / "sciwm" / "examples" / "md_campaign.toml"
    raw = tomllib.loads(shipped.read_text())["world_model"]["settings"]
    cfg = MDEmulatorWorldModel.check_settings(raw, md_space())
    assert (cfg.grid, cfg.n_trajectories, cfg.rollout_ps) == (5, 16, 500.0)
    cfg = MDEmulatorWorldModel.check_settings({"relax_ps": 0, "calibration": 2}, md_space())
    assert cfg.relax == 0.0 and cfg.relax_config.n_steps == 0 and cfg.calibration == 2.0
    assert cfg.to_dict()["relax_ps"] == 0.0 and "relax" not in cfg.to_dict()
    model = MDEmulatorWorldModel(md_space(), ["pop_beta"], relax_ps=0.1)
    assert model.cfg.relax_config.length_ps == 0.1
    for bad, message in [
        ({"grid": "five"}, "whole number"),
        ({"relax_ps": -1.0}, "relax_ps"),
        ({"tau_ps": 100.0, "rollout_ps": 50.0}, "rollout_ps"),
        ({"n_trajectories": 1}, "n_trajectories"),
        ({"temperature": "T"}, "numeric parameter 'T'"),
    ]:
        with pytest.raises(WorldModelError, match=message):
            MDEmulatorWorldModel.check_settings(bad, md_space())


def test_can_fit_before_any_real_result() -> None:
    """The emulator predicts every per-frame observable with no real result; an outcome it
    cannot compute waits for two measurements."""
    assert MDEmulatorWorldModel(md_space(), ["pop_alpha_r", "psi_mean_cos"]).can_fit([], [])
    assert not MDEmulatorWorldModel(md_space(), ["pop_alpha_r"], grid=0).can_fit([], [])
    model = MDEmulatorWorldModel(md_space(), ["pop_alpha_r", "energy_mean"], **FAST)
    assert not model.can_fit([], [])
    exps, obs = make_data(md_space(), ["pop_alpha_r", "energy_mean"], 2, 0)
    assert not model.can_fit(exps[:1], obs[:1])
    assert model.can_fit(exps, obs)


def test_saved_model_carries_the_emulator(tmp_path) -> None:
    """A saved model rolls out without its checkpoint file, exactly as before saving."""
    import shutil

    import torch

    from sciwm.world_model import WorldModel

    ckpt = tmp_path / "ckpt" / "ens.pt"
    ckpt.parent.mkdir()
    shutil.copy(DEFAULT_CHECKPOINT, ckpt)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), ckpt.with_suffix(".json"))
    model = MDEmulatorWorldModel(md_space(), ["pop_beta"], checkpoint=str(ckpt), **FAST)
    model.fit([], [])
    saved = model.save(tmp_path / "saved")
    shutil.rmtree(ckpt.parent)  # the checkpoint is gone: the saved model must not need it
    loaded = WorldModel.load(saved)
    start = model.starts(400.0, 3, seed=4)
    torch.testing.assert_close(loaded.starts(400.0, 3, seed=4), start)
    a = model.emulate(400.0, start=start, length_ps=200.0, seed=5)
    b = loaded.emulate(400.0, start=start, length_ps=200.0, seed=5)
    torch.testing.assert_close(a["rollout"].positions, b["rollout"].positions)
    q = [{"temperature": 420.0, "length_ps": 300.0}]
    assert loaded.predict(q)[0].outcomes["pop_beta"].mean == pytest.approx(
        model.predict(q)[0].outcomes["pop_beta"].mean
    )
    assert torch.load(saved / "state.pt", weights_only=True)  # tensors only, no pickle


@pytest.mark.parametrize("temperature", [300.0, 450.0, 600.0])
def test_run_noise_matches_independent_real_runs(temperature: float) -> None:
    """The sampling noise of one real run (which widens predictions and prices fidelities)
    comes from block means of the training runs; independent reference runs agree with it."""
    import torch

    from sciwm.md.torch_ops import frame_observables
    from surrogates.md.data import load_dataset

    model = MDEmulatorWorldModel(md_space(), ["pop_alpha_r"], **FAST)
    model.fit([], [])
    space = md_space()
    data = load_dataset()
    basins = tuple(float(v) for v in data.meta["basins"]["alpha_r_psi"])
    molecule = model.emulation.models[0].molecule
    for length in (100.0, 500.0):
        x = space.encode([{"temperature": temperature, "length_ps": length}]).double()
        predicted = float(model.observation_std(x, "pop_alpha_r")[0])
        blocks = []
        for traj in data.select(role="reference", temperature=temperature):
            pop = frame_observables(traj.positions, molecule, basins)["pop_alpha_r"]
            b = int(length / traj.frame_ps)
            blocks.append(pop[: (len(pop) // b) * b].reshape(-1, b).mean(1))
        measured = float(torch.cat(blocks).std())
        assert measured / 2 < predicted < 2 * measured, (length, predicted, measured)


def test_extrapolating_outside_trained_temperatures_and_lengths() -> None:
    space = SearchSpace(
        (
            Parameter("temperature", "float", 250.0, 700.0),
            Parameter("length_ps", "float", 1.0, 10000.0, log=True, fidelity=True),
        )
    )
    model = MDEmulatorWorldModel(space, ["pop_alpha_r"], **{**FAST, "grid": 1})
    model.fit([], [])
    lo, hi = model.emulation.train_temperatures[0], model.emulation.train_temperatures[-1]
    shortest, longest = model.emulation.noise_length_range
    inside, hot, long = model.predict(
        [
            {"temperature": (lo + hi) / 2, "length_ps": longest},
            {"temperature": hi + 50.0, "length_ps": longest},
            {"temperature": lo, "length_ps": 2 * longest},
        ]
    )
    assert not inside.extrapolating and inside.extrapolating_reason is None
    assert hot.extrapolating and f"temperature={hi + 50.0:g} K" in hot.extrapolating_reason
    assert long.extrapolating and f"length_ps={2 * longest:g} ps" in long.extrapolating_reason


def test_alpha_r_at_350_k_for_2_ns_holds_the_real_check_runs() -> None:
    """The shipped check runs (six real 2 ns OpenMM runs at 350 K, never trained or
    calibrated on) lie inside the 90 % interval of a model fitted on nothing, which stays
    above zero, its mean within 0.01 of theirs."""
    from sciwm.md.calibration_runs import DEFAULT_PATH, load_runs
    from sciwm.md.observables import basin_populations

    if not DEFAULT_PATH.is_file():
        pytest.skip("no calibration runs file")
    real = [
        basin_populations(r["phi"], r["psi"])["alpha_r"]
        for r in load_runs(DEFAULT_PATH, role="check")
        if r["temperature"] == 350.0
    ]
    assert len(real) == 6
    space = SearchSpace(
        (
            Parameter("temperature", "float", 300.0, 600.0),
            Parameter("length_ps", "float", 20.0, 2000.0, log=True, fidelity=True),
        )
    )
    model = MDEmulatorWorldModel(space, ["pop_alpha_r"], **FAST)
    model.fit([], [])
    (p,) = model.predict([{"temperature": 350.0, "length_ps": 2000.0}])
    est = p.outcomes["pop_alpha_r"]
    assert est.lower > 0.0
    assert all(est.contains(v) for v in real), (est, real)
    assert est.mean == pytest.approx(sum(real) / len(real), abs=0.01)
    assert not p.extrapolating
