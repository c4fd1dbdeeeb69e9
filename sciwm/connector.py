"""The ``Connector`` contract: how sciwm talks to a real lab, process or cluster.

Modelled on Ax's runner protocol, with errors as values: an experiment that fails comes back
as a ``FAILED`` observation carrying its error text; a backend that is misconfigured raises
:class:`sciwm.errors.ConnectorError`, and one that is down for now (connection refused, a
call timed out, a 503) raises its subclass :class:`sciwm.errors.BackendUnavailable`, on which
the campaign loop pauses dispatch and retries instead of failing experiments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sciwm.errors import SciwmError
from sciwm.experiment import Experiment, Observation, Status

#: A JSON-serialisable description of a submitted experiment, enough to find it again after
#: a crash of the campaign process.
Handle = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One result of :meth:`Connector.check`.

    Attributes:
        aspect: What was checked: ``"settings"``, ``"reachable"``, ``"credentials"``,
            ``"queue"``, ``"paths"`` or a connector's own word.
        ok: Whether it is as it should be.
        message: What was found (never a secret).
        fix: How to fix it, when ``ok`` is false.
    """

    aspect: str
    ok: bool
    message: str
    fix: str | None = None


class Connector(ABC):
    """A backend that runs real experiments.

    Subclasses are built as ``cls(workdir, **settings)`` with the campaign file's
    ``[connector.settings]``; ``workdir`` is a directory the connector owns for the campaign
    (state files, logs), stable across restarts.
    """

    #: Short name used in campaign files (``[connector] type = "..."``).
    name: ClassVar[str] = "abstract"
    #: Whether :meth:`cancel` stops a running experiment; early stopping of one that cannot
    #: be cancelled waits for its end and says so.
    can_cancel: ClassVar[bool] = True

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

    def partial(self, handle: Handle) -> list[dict[str, Any]]:
        """What a running experiment has measured so far, oldest first (default: nothing).

        Each point is ``{"fidelity": {parameter: value}, "outcomes": {name: value},
        "cost": cost so far}``: the learning curve so far of a training run (fidelity: its
        training size), the simulation so far of an MD run (its length). Early stopping
        reads it (:mod:`scheduler.early_stop`); a connector without partial results returns
        ``[]`` and its experiments run to their end.
        """
        return []

    def resolve(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters the backend would really run for ``parameters``.

        A backend that snaps or rounds a request (a replayed data set answering a training
        size with the largest one it recorded below it) says so here, so that the agent never
        proposes what maps to an experiment already run. The default changes nothing.
        """
        return dict(parameters)

    def capacity(self) -> int:
        """How many more experiments the backend can run at once right now."""
        return int(self.settings.get("parallelism", 1))

    def check(self) -> list[Finding]:
        """Whether the backend is reachable and correctly configured, as findings.

        The default asks :meth:`capacity`: an answer means the backend is reachable. A
        connector overrides this to check what only it knows (credentials, a queue, shared
        paths). It never raises for a problem it can describe; it reports it.
        """
        try:
            free = self.capacity()
        except SciwmError as exc:
            return [
                Finding(
                    "reachable",
                    False,
                    f"capacity() failed: {exc}",
                    "make the backend reachable, or fix [connector.settings]",
                )
            ]
        return [Finding("reachable", True, f"the backend answers; {free} slot(s) free now")]

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources (connections, pools). Running experiments are left running."""
