"""Real campaigns for the tests of the Python API and the service (run once per module)."""

from __future__ import annotations

from pathlib import Path

from sciwm.cli import main
from sciwm.spec import load_spec
from sciwm.store import RecordStore
from tests.flows.conftest import write_campaign


def run_small_campaign(folder: Path, name: str, max_experiments: int = 6) -> str:
    """Run the 3-parameter bowl campaign of ``tests.flows`` to its end in ``folder``.

    Returns:
        The tracking URI of the SQLite store in ``folder``.
    """
    uri = f"sqlite:///{folder}/mlflow.db"
    spec = write_campaign(folder, name, max_experiments=max_experiments, initial=3)
    assert main(["--tracking-uri", uri, "campaign", "run", str(spec), "--no-prefect"]) == 0
    return uri


def open_empty_campaign(folder: Path, uri: str, name: str, second_objective: bool = False) -> None:
    """Create a campaign in the store at ``uri`` that has not run any experiment.

    ``second_objective`` adds an objective ``g`` (minimised): a multi-objective campaign.
    """
    path = write_campaign(folder, name)
    if second_objective:
        text = path.read_text().replace(
            "[budget]", '[[objectives]]\nname = "g"\ndirection = "minimize"\n\n[budget]'
        )
        path.write_text(text)
    RecordStore(uri).open_campaign(load_spec(path), path.read_text())
