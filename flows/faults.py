"""How the campaign loop lives with faults: retries, time-outs, poison experiments, pauses.

The loop (:mod:`flows.loop`) asks a :class:`FaultHandler`, configured by the campaign file's
``[faults]`` table (:class:`sciwm.spec.FaultsSpec`, documented in ``docs/faults.md``):

- **calls** to the connector that raise :class:`~sciwm.errors.ConnectorError` are retried
  with back-off (:func:`call_connector`); a :class:`~sciwm.errors.BackendUnavailable` passes
  straight through to :meth:`FaultHandler.pause`, which waits with back-off, without failing
  an experiment or spending budget, and stops the campaign (resumably) only after
  ``unavailable_wait_s``;
- **time-outs**: an experiment running longer than ``timeout_s`` is cancelled and recorded as
  a failure that may be retried;
- **retries**: a failure marked transient (the backend lost the run, a worker died, the loop's
  time-out; or every failure with ``retry_all_failures``) is tried again, as a new experiment
  with the same parameters, through the gate (so the budget still holds), up to
  ``max_attempts`` tries; then it stays failed — a poison experiment — and the campaign goes on;
- **the same failure everywhere**: when the first ``same_failure_limit`` results of a run of
  the loop all fail with the same error (a wrong signature, a missing module), the campaign
  stops and says so, instead of spending its whole cap on it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from scheduler.gate import Candidate
from sciwm.connector import Connector
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Observation, Status, canonical_json
from sciwm.spec_faults import FaultsSpec
from sciwm.store import Record

log = logging.getLogger("sciwm.campaign")

#: Attempts (with back-off) before a connector call that raises stops the campaign.
CONNECTOR_RETRIES = 3
#: Shortest wait between two tries of an unavailable backend, in seconds.
MIN_PAUSE_S = 0.1

T = TypeVar("T")

_ID = re.compile(r"\b\d+-[0-9a-f]{10}\b")  # an experiment id, as sciwm.experiment makes them
_HEX = re.compile(r"\b[0-9a-f]{8,}\b")


def call_connector(fn: Callable[..., T], *args: Any, tracking_uri: str = "") -> T:
    """Call a connector method, retrying a :class:`ConnectorError` with back-off.

    Raises:
        BackendUnavailable: At once (the loop pauses on it; the connector has retried).
        ConnectorError: After :data:`CONNECTOR_RETRIES` failures, saying that every recorded
            result is kept and how to resume.
    """
    delay = 0.5
    for attempt in range(1, CONNECTOR_RETRIES + 1):
        try:
            return fn(*args)
        except BackendUnavailable:
            raise
        except ConnectorError as exc:
            if attempt == CONNECTOR_RETRIES:
                raise ConnectorError(
                    f"{exc}\nThe campaign stopped after {attempt} attempts; every recorded "
                    f"result is kept in {tracking_uri}. Fix the backend and run "
                    "`sciwm campaign run` again to resume."
                ) from None
            log.warning("connector call failed (attempt %d): %s", attempt, exc)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def signature(error: str | None) -> str:
    """A failure's first line of error, without the ids that differ between experiments.

    Numbers are kept: an error that names the parameters it failed at (``broke at x=0.78``)
    is a region of the space failing, not every experiment failing the same way.
    """
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    text = lines[0] if lines else "no error text"
    return _HEX.sub("…", _ID.sub("<id>", text))[:300]


def is_transient(observation: Observation) -> bool:
    """Whether a failed run may succeed if tried again (``metadata["transient"]`` says so)."""
    return observation.status is Status.FAILED and observation.metadata.get("transient") is True


def _key(record: Record) -> str:
    return canonical_json(record.experiment.parameters)


class FaultHandler:
    """The loop's memory of failures, retries, time-outs and pauses (see the module docstring).

    Args:
        policy: The campaign file's ``[faults]`` table.
        tracking_uri: Where the records are, for messages.
    """

    def __init__(self, policy: FaultsSpec, tracking_uri: str = "") -> None:
        self.policy = policy
        self.tracking_uri = tracking_uri
        self._retries: list[tuple[float, Record]] = []  # (due, the failed record)
        self._started: dict[str, float] = {}  # experiment id -> monotonic time seen running
        self._session: list[tuple[str, str]] = []  # (signature, parameters) of failures
        self._completed = False  # a result completed in this run of the loop
        self._down_since: float | None = None
        self._pause_tries = 0

    # -- retries -------------------------------------------------------------------------------
    def rebuild(self, finished: Sequence[Record], running: Sequence[Record]) -> None:
        """After a resume: schedule the retries that the last run of the loop still owed."""
        busy = {_key(r) for r in running}
        last: dict[str, Record] = {}
        for rec in finished:
            last[_key(rec)] = rec
        for key, rec in last.items():
            if key not in busy and self._retry_due(rec, finished):
                self._retries.append((time.monotonic(), rec))

    def finished(self, record: Record, history: Sequence[Record]) -> None:
        """Note a finished experiment (``history`` includes it); schedule a retry if owed."""
        self._started.pop(record.experiment.id, None)
        obs = record.observation
        if obs is None or obs.status is Status.COMPLETED:
            self._completed = True
            return
        if obs.status is not Status.FAILED:
            return
        key = _key(record)
        if key not in {p for _, p in self._session}:
            self._session.append((signature(obs.error), key))
        tries = self._tries(record, history)
        if self._retry_due(record, history):
            delay = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** (tries - 1))
            log.warning(
                "experiment %s failed (try %d of %d): %s; trying again in %.3g s",
                record.experiment.id, tries, self.policy.max_attempts, obs.error, delay,
            )  # fmt: skip
            self._retries.append((time.monotonic() + delay, record))
        elif self._retryable(obs) and tries >= self.policy.max_attempts:
            log.warning(
                "experiment with parameters %s failed %d times; it stays failed and the "
                "campaign goes on (last error: %s)",
                record.experiment.parameters, tries, obs.error,
            )  # fmt: skip

    def due(self, n: int) -> list[Candidate]:
        """Up to ``n`` retries whose back-off has passed, as candidates for the gate."""
        now = time.monotonic()
        ready = [item for item in self._retries if item[0] <= now][:n]
        for item in ready:
            self._retries.remove(item)
        return [Candidate(dict(r.experiment.parameters), r.prediction) for _, r in ready]

    @property
    def retries_waiting(self) -> int:
        """Retries scheduled but not yet handed to the gate."""
        return len(self._retries)

    def _retryable(self, obs: Observation) -> bool:
        return obs.status is Status.FAILED and (self.policy.retry_all_failures or is_transient(obs))

    def _tries(self, record: Record, history: Sequence[Record]) -> int:
        key = _key(record)
        return sum(
            1
            for r in history
            if _key(r) == key and r.observation and r.observation.status is Status.FAILED
        )

    def _retry_due(self, record: Record, history: Sequence[Record]) -> bool:
        obs = record.observation
        return (
            obs is not None
            and self._retryable(obs)
            and self._tries(record, history) < self.policy.max_attempts
        )

    # -- the same failure everywhere -----------------------------------------------------------
    def stop_reason(self, parameter_names: Sequence[str]) -> str | None:
        """Why the campaign should stop because every experiment fails alike, or ``None``."""
        limit = self.policy.same_failure_limit
        if limit == 0 or self._completed or len(self._session) < limit:
            return None
        sigs = {s for s, _ in self._session[:limit]}
        if len(sigs) != 1:
            return None
        error = self._session[0][0]
        if error.startswith("TypeError"):
            hint = (
                "does the callable take the campaign's parameters? It is called as "
                f"fn({', '.join(f'{p}=...' for p in parameter_names)})"
            )
        elif "budget cap" in error:
            hint = (
                "each experiment was stopped at its share of the budget: the budget is smaller "
                "than one experiment costs; raise [budget] total"
            )
        else:
            hint = "fix what the error says"
        return (
            f"the first {limit} experiments all failed the same way: {error} -- {hint}, then "
            "run `sciwm campaign run` again (every result so far is kept; set [faults] "
            "same_failure_limit = 0 to go on regardless)"
        )

    # -- time-outs -----------------------------------------------------------------------------
    def timed_out(self, record: Record, connector: Connector) -> Observation | None:
        """Cancel ``record``'s run if it has run past ``timeout_s``; its failed observation.

        The clock starts when this run of the loop submitted it or first saw it running.
        """
        limit = self.policy.timeout_s
        if limit is None:
            return None
        started = self._started.setdefault(record.experiment.id, time.monotonic())
        elapsed = time.monotonic() - started
        if elapsed <= limit:
            return None
        call_connector(connector.cancel, record.handle, tracking_uri=self.tracking_uri)
        cost = None
        try:
            cost = call_connector(connector.fetch, record.handle).cost
        except ConnectorError as exc:
            log.warning("no observation of the cancelled experiment: %s", exc)
        return Observation.failed(
            record.experiment.id,
            f"timed out after {elapsed:.3g} s ([faults] timeout_s = {limit:g}); cancelled",
            cost=cost,
            metadata={"transient": True, "timed_out": True},
        )

    # -- an unavailable backend ----------------------------------------------------------------
    def pause(self, exc: BackendUnavailable) -> None:
        """Wait (with back-off) for an unavailable backend; nothing fails, nothing is spent.

        Raises:
            BackendUnavailable: Once it has been unavailable for ``unavailable_wait_s``.
        """
        now = time.monotonic()
        if self._down_since is None:
            self._down_since, self._pause_tries = now, 0
        down = now - self._down_since
        left = self.policy.unavailable_wait_s - down
        if left <= 0:
            raise BackendUnavailable(
                f"{exc}\nThe backend stayed unavailable for {down:.0f} s ([faults] "
                f"unavailable_wait_s = {self.policy.unavailable_wait_s:g}); no experiment "
                f"was failed or charged for it. Every recorded result is kept in "
                f"{self.tracking_uri}; run `sciwm campaign run` again to resume."
            ) from None
        delay = min(self.policy.max_backoff_s, self.policy.backoff_s * 2**self._pause_tries)
        if exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
        delay = min(max(delay, MIN_PAUSE_S), left)
        tries, self._pause_tries = self._pause_tries, self._pause_tries + 1
        # the 1st, 2nd, 4th, 8th ... try of one pause are logged as warnings, not every one
        level = logging.WARNING if tries & (tries + 1) == 0 else logging.INFO
        log.log(
            level,
            "backend unavailable: %s -- dispatch paused (no experiment failed, no budget "
            "spent); trying again in %.3g s",
            exc, delay,
        )  # fmt: skip
        time.sleep(delay)

    def resumed(self) -> None:
        """Note that the backend answered again."""
        if self._down_since is not None:
            log.warning(
                "backend available again after %.3g s; dispatch resumes",
                time.monotonic() - self._down_since,
            )
            self._down_since = None

    def submitted(self, experiment_id: str) -> None:
        """Start the time-out clock of a just-submitted experiment."""
        self._started[experiment_id] = time.monotonic()
