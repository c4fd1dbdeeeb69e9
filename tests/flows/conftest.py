"""Shared fixtures: a small campaign file around :mod:`tests.flows.fns`."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CAMPAIGN = """
[campaign]
name = "{name}"
seed = 1

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "y"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "kind"
type = "categorical"
choices = ["a", "b"]

[[objectives]]
name = "f"
direction = "maximize"

[budget]
total = {budget}
unit = "s"

[connector]
type = "local"

[connector.settings]
function = "tests.flows.fns:{function}"
timeout_s = 20
env = {{ PYTHONPATH = "{root}" }}

[scheduler]
acquisition = "{acquisition}"
batch_size = 2
parallelism = 2
initial_experiments = {initial}
poll_interval_s = 0.05
num_restarts = 2
raw_samples = 32

[stopping]
max_experiments = {max_experiments}
"""


def write_campaign(
    folder: Path,
    name: str,
    *,
    budget: float = 30.0,
    function: str = "bowl",
    acquisition: str = "ei_per_cost",
    initial: int | None = 3,
    max_experiments: int = 6,
    world_model: str | None = None,
) -> Path:
    """Write a campaign file into ``folder`` and return its path.

    ``initial=None`` leaves ``initial_experiments`` out; ``world_model`` is a ``[world_model]
    type`` (default: the file has no ``[world_model]`` table, so the GP).
    """
    path = folder / f"{name}.toml"
    text = CAMPAIGN.format(
        name=name,
        budget=budget,
        function=function,
        acquisition=acquisition,
        initial=initial,
        max_experiments=max_experiments,
        root=ROOT,
    )
    if initial is None:
        text = text.replace("initial_experiments = None\n", "")
    if world_model is not None:
        text += f'\n[world_model]\ntype = "{world_model}"\n'
    path.write_text(text)
    return path


@pytest.fixture
def campaign_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory for a campaign, also made the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path
