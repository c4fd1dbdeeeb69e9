"""The ``md_emulator`` world model's settings, read and checked once from a campaign file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sciwm.errors import WorldModelError
from surrogates.md.relax import RelaxConfig

#: The committed emulator checkpoint.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "alanine_vacuum.pt"
#: Campaign-file name of each setting that is not spelt as its field.
_CAMPAIGN_NAME = {"relax": "relax_ps"}


@dataclass(frozen=True)
class MDEmulatorSettings:
    """``[world_model.settings]`` of ``md_emulator`` (see its module doc for each).

    Attributes:
        checkpoint: Emulator checkpoint (``.pt`` with its ``.json``).
        data: Data set the start frames and run noise come from (``None``: the committed one).
        temperature: Name of the temperature parameter (K).
        length: Name of the simulation-length fidelity parameter (ps; may be absent).
        grid: Temperatures emulated at the first fit.
        n_trajectories: Trajectories per grid temperature.
        tau_ps: Jump length.
        rollout_ps: Simulated time per emulated trajectory.
        relax: The corrector after every jump (campaign setting ``relax_ps``).
        calibration: Factor on the emulator's std (``None``: the checkpoint's).
        seed: Noise seed.
    """

    checkpoint: Path = DEFAULT_CHECKPOINT
    data: str | None = None
    temperature: str = "temperature"
    length: str = "length_ps"
    grid: int = 7
    n_trajectories: int = 32
    tau_ps: float = 100.0
    rollout_ps: float = 1000.0
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    calibration: float | None = None
    seed: int = 0

    @classmethod
    def names(cls) -> list[str]:
        """The campaign-file names of the settings."""
        return [_CAMPAIGN_NAME.get(f.name, f.name) for f in fields(cls)]

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> MDEmulatorSettings:
        """Read campaign-file settings.

        Raises:
            WorldModelError: On an unknown setting or a value out of range.
        """
        unknown = sorted(set(settings) - set(cls.names()))
        if unknown:
            raise WorldModelError(
                f"unknown setting(s) {unknown} for the 'md_emulator' world model; it takes "
                f"{cls.names()}"
            )
        d = cls()
        out = cls(
            checkpoint=Path(settings.get("checkpoint", d.checkpoint)),
            data=settings.get("data"),
            temperature=str(settings.get("temperature", d.temperature)),
            length=str(settings.get("length", d.length)),
            grid=int(settings.get("grid", d.grid)),
            n_trajectories=int(settings.get("n_trajectories", d.n_trajectories)),
            tau_ps=float(settings.get("tau_ps", d.tau_ps)),
            rollout_ps=float(settings.get("rollout_ps", d.rollout_ps)),
            relax=RelaxConfig(length_ps=float(settings.get("relax_ps", d.relax.length_ps))),
            calibration=settings.get("calibration"),
            seed=int(settings.get("seed", d.seed)),
        )
        if out.grid < 0 or out.n_trajectories < 2 or out.tau_ps <= 0 or out.rollout_ps < out.tau_ps:
            raise WorldModelError(
                "md_emulator settings need grid >= 0, n_trajectories >= 2, tau_ps > 0 and "
                "rollout_ps >= tau_ps"
            )
        return out


__all__ = ["DEFAULT_CHECKPOINT", "MDEmulatorSettings"]
