"""The ``Connector`` contract: how sciwm talks to a real lab, process or cluster.

Modelled on Ax's runner protocol, with errors as values: an experiment that fails comes back
as a ``FAILED`` observation carrying its error text; only a backend that cannot be reached at
all raises :class:`sciwm.errors.ConnectorError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from sciwm.experiment import Experiment, Observation, Status

#: A JSON-serialisable description of a submitted experiment, enough to find it again after
#: a crash of the campaign process.
Handle = dict[str, Any]


class Connector(ABC):
    """A backend that runs real experiments.

    Subclasses are built as ``cls(workdir, **settings)`` with the campaign file's
    ``[connector.settings]``; ``workdir`` is a directory the connector owns for the campaign
    (state files, logs), stable across restarts.
    """

    #: Short name used in campaign files (``[connector] type = "..."``).
    name: ClassVar[str] = "abstract"

    def __init__(self, workdir: str | Path, **settings: Any) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.settings = dict(settings)

    @abstractmethod
    def submit(self, experiment: Experiment) -> Handle:
        """Start an experiment; idempotent per ``experiment.id``.

        Submitting an id the backend already knows returns the existing handle and starts
        nothing new.

        Raises:
            ConnectorError: If the backend cannot be reached or refuses the submission.
        """

    @abstractmethod
    def poll(self, handle: Handle) -> Status:
        """Current status: ``RUNNING``, ``COMPLETED``, ``FAILED`` or ``CANCELLED``."""

    @abstractmethod
    def fetch(self, handle: Handle) -> Observation:
        """The observation of a finished experiment (a ``FAILED`` one carries the error)."""

    @abstractmethod
    def cancel(self, handle: Handle) -> None:
        """Stop an experiment; a finished one is left as it is."""

    def capacity(self) -> int:
        """How many more experiments the backend can run at once right now."""
        return int(self.settings.get("parallelism", 1))

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources (connections, pools). Running experiments are left running."""
