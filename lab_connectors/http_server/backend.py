"""The lab behind the reference server: any sciwm connector, with a queue and a state folder.

:class:`LabBackend` turns a :class:`sciwm.connector.Connector` (the local connector running a
Python callable, the replay connector answering from LCDB, or any other) into what the HTTP
protocol needs: submissions idempotent by experiment id, a queue beyond the lab's
``parallelism``, and state that survives a restart of the server. Each experiment the lab
accepts leaves ``<state_dir>/experiments/<id>.json`` (the request, the submit time, the
backend's handle once started, a cancel mark); the backend connector keeps its own state in
``<state_dir>/backend``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from lab_connectors.http_protocol import Capacity, ExperimentState, LabStatus, Result, SubmitRequest
from sciwm.connector import Connector
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Status


class LabError(Exception):
    """A request the lab refuses; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class LabBackend:
    """Experiments by id, run on ``connector`` at most ``parallelism`` at a time.

    Thread-safe: every method holds one lock (the connector is called from one thread at a
    time). A daemon thread started by :meth:`start` polls running experiments and starts
    queued ones as slots free up; the request methods do the same on their way.

    Args:
        connector: The backend that really runs experiments (built on ``state_dir/backend``).
        state_dir: Folder of the lab's records; stable across restarts.
        parallelism: Experiments run at once; the rest wait in the queue.
        name: The lab's name, for ``/v1/health``.
    """

    def __init__(
        self, connector: Connector, state_dir: str | Path, parallelism: int = 1, name: str = ""
    ) -> None:
        if parallelism < 1:
            raise ConnectorError(f"lab parallelism must be >= 1, got {parallelism}")
        self.connector = connector
        self.parallelism = int(parallelism)
        self.name = name
        self.folder = Path(state_dir) / "experiments"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}
        self._queued: list[str] = []  # ids waiting for a slot, oldest first
        self._running: set[str] = set()  # ids started and not yet seen finished
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        loaded = [json.loads(p.read_text()) for p in self.folder.glob("*.json")]
        for record in sorted(loaded, key=lambda r: r["submitted_at"]):
            exp_id = record["request"]["id"]
            self._records[exp_id] = record
            if record["handle"] is not None:
                self._running.add(exp_id)
            elif not record.get("cancelled"):
                self._queued.append(exp_id)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, interval_s: float = 0.05) -> None:
        """Start the thread that advances the queue every ``interval_s`` seconds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the queue thread and close the connector (running experiments go on)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.connector.close()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.advance()
            except Exception:  # noqa: BLE001 - the thread must survive a failing poll
                time.sleep(interval_s)

    # -- the protocol --------------------------------------------------------------------------
    def submit(self, request: SubmitRequest) -> tuple[ExperimentState, bool]:
        """Accept an experiment; ``(state, created)``, ``created`` false for a known id.

        Raises:
            LabError: 409 if the id is known with other parameters.
        """
        with self._lock:
            known = self._records.get(request.id)
            if known is not None:
                if known["request"] != request.model_dump():
                    raise LabError(
                        409,
                        f"experiment {request.id} was already submitted with other content "
                        f"({known['request']['parameters']}); an id names one experiment",
                    )
                return self._state(known), False
            record = {"request": request.model_dump(), "submitted_at": time.time(), "handle": None}
            self._records[request.id] = record
            self._queued.append(request.id)
            self._save(record)
            self.advance()
            return self._state(record), True

    def status(self, experiment_id: str) -> ExperimentState:
        """Where an experiment is. Raises: LabError: 404 for an unknown id."""
        with self._lock:
            return self._state(self._get(experiment_id))

    def result(self, experiment_id: str) -> Result:
        """The result of a finished experiment. Raises: LabError: 404, or 409 if unfinished."""
        with self._lock:
            record = self._get(experiment_id)
            state = self._state(record)
            if not state.status.finished:
                raise LabError(
                    409, f"experiment {experiment_id} is {state.status.value}; no result yet"
                )
            if record.get("cancelled") and record["handle"] is None:
                return Result(id=experiment_id, status=LabStatus.CANCELLED, error="cancelled")
            obs = self.connector.fetch(record["handle"])
            return Result(
                id=experiment_id,
                status=LabStatus(obs.status.value),
                outcomes=dict(obs.outcomes),
                cost=obs.cost,
                started_at=obs.started_at,
                finished_at=obs.finished_at,
                error=obs.error,
                metadata=json.loads(json.dumps(obs.metadata, default=str)),
            )

    def cancel(self, experiment_id: str) -> ExperimentState:
        """Cancel an experiment; a finished one is left as it is. Raises: LabError: 404."""
        with self._lock:
            record = self._get(experiment_id)
            if not self._state(record).status.finished:
                record["cancelled"] = True
                if experiment_id in self._queued:
                    self._queued.remove(experiment_id)
                self._save(record)
                if record["handle"] is not None:
                    self.connector.cancel(record["handle"])
            return self._state(record)

    def capacity(self) -> Capacity:
        """Free slots, slots in all, running and queued experiments."""
        with self._lock:
            self.advance()
            running, queued = len(self._running), len(self._queued)
            return Capacity(
                free=max(self.parallelism - running - queued, 0),
                total=self.parallelism,
                running=running,
                queued=queued,
            )

    # -- the queue -----------------------------------------------------------------------------
    def advance(self) -> None:
        """Note finished experiments; start queued ones (oldest first) while slots are free."""
        with self._lock:
            for exp_id in list(self._running):
                self._raw_status(self._records[exp_id])
            while self._queued and len(self._running) < self.parallelism:
                record = self._records[self._queued.pop(0)]
                req = record["request"]
                exp = Experiment(
                    req["id"], req["campaign"], req["seq"], req["parameters"], req["max_cost"]
                )
                record["handle"] = self.connector.submit(exp)
                self._running.add(req["id"])
                self._save(record)

    def _raw_status(self, record: dict[str, Any]) -> LabStatus:
        if record["handle"] is None:
            return LabStatus.CANCELLED if record.get("cancelled") else LabStatus.QUEUED
        if record.get("done"):
            return LabStatus(record["done"])
        status = self.connector.poll(record["handle"])
        if status is Status.RUNNING:
            return LabStatus.RUNNING
        record["done"] = status.value  # finished: no need to ask the backend again
        self._running.discard(record["request"]["id"])
        return LabStatus(status.value)

    def _state(self, record: dict[str, Any]) -> ExperimentState:
        return ExperimentState(
            id=record["request"]["id"],
            status=self._raw_status(record),
            submitted_at=record["submitted_at"],
        )

    def _get(self, experiment_id: str) -> dict[str, Any]:
        record = self._records.get(experiment_id)
        if record is None:
            raise LabError(404, f"this lab knows no experiment {experiment_id!r}; submit it first")
        return record

    def _save(self, record: dict[str, Any]) -> None:
        path = self.folder / f"{record['request']['id']}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({k: v for k, v in record.items() if k != "done"}))
        os.replace(tmp, path)

    def times_submitted(self, experiment_id: str) -> int:
        """1 if the lab ever started ``experiment_id`` on its backend, else 0."""
        with self._lock:
            record = self._records.get(experiment_id)
            return int(record is not None and record["handle"] is not None)
