"""The ``md_emulator`` world model's settings, read and checked once from a campaign file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sciwm.errors import WorldModelError
from sciwm.world_model_settings import WorldModelSettings
from surrogates.md.relax import RelaxConfig

if TYPE_CHECKING:
    from sciwm.space import SearchSpace

#: The committed emulator checkpoint.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "alanine_vacuum.pt"


@dataclass(frozen=True)
class MDEmulatorSettings(WorldModelSettings):
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
        relax: Simulated time of the corrector after every jump, ps (campaign setting
            ``relax_ps``; ``0`` turns it off).
        calibration: Factor on the emulator's std (``None``: the checkpoint's).
        seed: Noise seed.
    """

    model_name: ClassVar[str] = "md_emulator"
    aliases: ClassVar[dict[str, str]] = {"relax": "relax_ps"}

    checkpoint: Path = DEFAULT_CHECKPOINT
    data: str | None = None
    temperature: str = "temperature"
    length: str = "length_ps"
    grid: int = 7
    n_trajectories: int = 32
    tau_ps: float = 100.0
    rollout_ps: float = 1000.0
    relax: float = RelaxConfig.length_ps
    calibration: float | None = None
    seed: int = 0

    @property
    def relax_config(self) -> RelaxConfig:
        """The corrector's settings (its length from ``relax_ps``, the rest its defaults)."""
        return RelaxConfig(length_ps=self.relax)

    def check(self, space: SearchSpace | None) -> None:
        """Ranges, and the temperature (and length) parameters against the search space.

        Raises:
            WorldModelError: Naming the setting that is out of range or the missing parameter.
        """
        if self.grid < 0 or self.n_trajectories < 2 or self.tau_ps <= 0:
            raise WorldModelError(
                "md_emulator settings need grid >= 0, n_trajectories >= 2 and tau_ps > 0; got "
                f"grid={self.grid}, n_trajectories={self.n_trajectories}, tau_ps={self.tau_ps}"
            )
        if self.rollout_ps < self.tau_ps:
            raise WorldModelError(
                f"md_emulator setting rollout_ps={self.rollout_ps} is shorter than one jump "
                f"(tau_ps={self.tau_ps}); give rollout_ps >= tau_ps"
            )
        if not (math.isfinite(self.relax) and self.relax >= 0):
            raise WorldModelError(
                f"md_emulator setting relax_ps={self.relax} must be >= 0 ps (0 turns the "
                "corrector off)"
            )
        if self.calibration is not None and not self.calibration > 0:
            raise WorldModelError(f"md_emulator setting calibration={self.calibration} must be > 0")
        if space is None:
            return
        if self.temperature not in space.names or space[self.temperature].kind == "categorical":
            raise WorldModelError(
                f"the md_emulator world model needs a numeric parameter {self.temperature!r} "
                f"(temperature in K) in the search space; the space has {space.names}. Name it "
                "with the 'temperature' setting."
            )
        if self.length in space.names and space[self.length].kind == "categorical":
            raise WorldModelError(f"the length parameter {self.length!r} must be numeric")


__all__ = ["DEFAULT_CHECKPOINT", "MDEmulatorSettings"]
