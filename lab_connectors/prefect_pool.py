"""The Prefect work-pool connector: experiments run as flow runs picked up by Prefect workers.

The connector deploys :func:`lab_connectors.prefect_flow.sciwm_experiment` on a work pool
(once, on first use) and makes each experiment one flow run of that deployment. Workers of the
pool (``prefect worker start --pool NAME``), on this machine or any other that reaches the
Prefect API and has sciwm and the experiment's code installed, run them; results come back as
flow-run artifacts through the API, so nothing but the API is shared.

Submission is idempotent twice over: the handle is kept in ``workdir/<experiment id>``, and
the flow run is created with an idempotency key made of the experiment id and the workdir, so
a campaign that crashed between creating the run and writing the handle gets the same run back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from lab_connectors import _prefect_api as api
from lab_connectors._local_settings import check_function_ref
from lab_connectors._local_worker import read_json, write_json_atomic
from lab_connectors.prefect_flow import ENTRYPOINT, FLOW_NAME
from sciwm.connector import Connector, Finding, Handle
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Observation, Status

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*")
HANDLE_FILE, OBSERVATION_FILE = "handle.json", "observation.json"
_KNOWN = (
    "function",
    "work_pool",
    "api_url",
    "deployment",
    "work_queue",
    "timeout_s",
    "outcome",
    "parallelism",
    "job_variables",
)


class PrefectPoolConnector(Connector):
    """Runs ``package.module:function`` as one Prefect flow run per experiment on a work pool.

    The function is called as with the local connector (a number, a dict of outcomes, or
    ``{"outcomes": ..., "cost": ...}``); its wall time on the worker is the cost unless it
    reports its own. ``max_cost`` stops an experiment at ``min(timeout_s, max_cost)`` seconds.

    Args:
        workdir: Directory owned by the connector for this campaign; stable across restarts.
        function: Import path of the callable, importable on the workers.
        work_pool: Name of the Prefect work pool whose workers run the experiments.
        api_url: The Prefect API (default: ``PREFECT_API_URL`` / the active Prefect profile).
        deployment: Name of the deployment created on the pool (default ``sciwm``).
        work_queue: A work queue of the pool (default: the pool's default queue).
        timeout_s: Wall-time limit per experiment on the worker, in seconds.
        outcome: Outcome name given to a bare number returned by the callable.
        parallelism: How many flow runs may be scheduled or running at once.
        job_variables: Job variables of the pool's job template for each run, e.g.
            ``{ env = { OMP_NUM_THREADS = "4" } }`` for a process pool.

    Raises:
        ConnectorError: If a setting is unknown or invalid.
    """

    name: ClassVar[str] = "prefect_pool"

    def __init__(
        self,
        workdir: str | Path,
        function: str | None = None,
        work_pool: str | None = None,
        api_url: str | None = None,
        deployment: str = "sciwm",
        work_queue: str | None = None,
        timeout_s: float = 3600.0,
        outcome: str = "objective",
        parallelism: int = 1,
        job_variables: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConnectorError(
                f"unknown setting(s) {sorted(unknown)} for the prefect_pool connector; known "
                f"settings: {list(_KNOWN)}. Fix [connector.settings] in the campaign file."
            )
        try:
            self.function = check_function_ref(function)
        except ConnectorError as exc:
            raise ConnectorError(str(exc).replace("local", "prefect_pool")) from None
        for key, value in (("work_pool", work_pool), ("deployment", deployment)):
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise ConnectorError(
                    f"prefect_pool connector setting {key}={value!r} is invalid; give the "
                    "name of a Prefect work pool (see `prefect work-pool ls`)"
                    if key == "work_pool"
                    else f"prefect_pool connector setting {key}={value!r}; give a name"
                )
        ok = isinstance(timeout_s, int | float) and not isinstance(timeout_s, bool)
        if not ok or timeout_s <= 0:
            raise ConnectorError(f"prefect_pool setting timeout_s={timeout_s!r}; give seconds > 0")
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ConnectorError(
                f"prefect_pool setting parallelism={parallelism!r}; give a whole number >= 1"
            )
        if job_variables is not None and not isinstance(job_variables, dict):
            raise ConnectorError(
                f"prefect_pool setting job_variables={job_variables!r}; give a table"
            )
        super().__init__(workdir, function=function, work_pool=work_pool, parallelism=parallelism)
        self.workdir = self.workdir.resolve()
        self.work_pool, self.deployment, self.work_queue = work_pool, deployment, work_queue
        self.timeout_s, self.outcome, self.parallelism = float(timeout_s), outcome, parallelism
        self.job_variables = dict(job_variables or {})
        self.api = api.PrefectApi(api_url or os.environ.get("PREFECT_API_URL") or None)
        self._deployment_id: UUID | None = None

    # -- the contract ------------------------------------------------------------------------

    def submit(self, experiment: Experiment) -> Handle:
        """Create the experiment's flow run on the pool; idempotent per ``experiment.id``.

        Raises:
            BackendUnavailable: If the Prefect API cannot be reached (nothing is submitted).
            ConnectorError: If the work pool does not exist or the API refuses the run.
        """
        if not _SAFE_ID.fullmatch(experiment.id):
            raise ConnectorError(f"experiment id {experiment.id!r} cannot name a directory")
        exp_dir = self.workdir / experiment.id
        handle = read_json(exp_dir / HANDLE_FILE)
        if isinstance(handle, dict):
            return handle
        exp_dir.mkdir(parents=True, exist_ok=True)
        limit = self.timeout_s
        reason = f"the connector's timeout_s={self.timeout_s:g}"
        if experiment.max_cost is not None and experiment.max_cost < limit:
            limit, reason = experiment.max_cost, f"its budget cap max_cost={experiment.max_cost:g}"
        spec = {
            **experiment.to_dict(),
            "function": self.function,
            "outcome": self.outcome,
            "timeout_s": limit,
            "timeout_reason": reason,
        }
        run_id = self.api.create_run(
            self._deployment(),
            parameters={"spec": spec, "result_key": result_key(experiment.id)},
            name=f"sciwm-{experiment.id}",
            idempotency_key=f"sciwm:{_digest(exp_dir)}:{experiment.id}",
            work_queue=self.work_queue,
            job_variables=self.job_variables,
        )
        handle = {"experiment_id": experiment.id, "dir": str(exp_dir), "flow_run_id": run_id}
        write_json_atomic(exp_dir / HANDLE_FILE, handle)
        return handle

    def poll(self, handle: Handle) -> Status:
        """``RUNNING`` while the flow run is scheduled, pending, running or being cancelled."""
        exp_dir, experiment_id, run_id = _unpack(handle)
        done = read_json(exp_dir / OBSERVATION_FILE)
        if isinstance(done, dict):
            return Status(done["status"])
        state, message = self.api.run_state(run_id)
        if state in api.ACTIVE:
            return Status.RUNNING
        obs = self._observation(experiment_id, run_id, state, message)
        write_json_atomic(exp_dir / OBSERVATION_FILE, obs.to_dict())
        return obs.status

    def fetch(self, handle: Handle) -> Observation:
        """The observation of a finished flow run.

        Raises:
            ConnectorError: If it has not finished yet (poll until it has).
        """
        exp_dir, experiment_id, _ = _unpack(handle)
        if not self.poll(handle).finished:
            raise ConnectorError(
                f"experiment {experiment_id} is still running; poll(handle) until it reports "
                "a finished status before fetch(handle)"
            )
        return Observation.from_dict(read_json(exp_dir / OBSERVATION_FILE))

    def cancel(self, handle: Handle) -> None:
        """Cancel the flow run (its worker stops the experiment); a finished one is left."""
        if self.poll(handle).finished:
            return
        _, _, run_id = _unpack(handle)
        self.api.cancel_run(run_id)

    def capacity(self) -> int:
        """``parallelism`` minus this campaign's flow runs that have not finished."""
        running = 0
        for handle_file in self.workdir.glob(f"*/{HANDLE_FILE}"):
            if (handle_file.parent / OBSERVATION_FILE).exists():
                continue
            handle = read_json(handle_file)
            if isinstance(handle, dict) and self.poll(handle) is Status.RUNNING:
                running += 1
        return max(self.parallelism - running, 0)

    def check(self) -> list[Finding]:
        """The Prefect API reachable, the work pool there, workers online, the deployment."""
        return api.check(self.api, self.work_pool, FLOW_NAME, self.deployment)

    def close(self) -> None:
        self.api.close()

    # -- helpers -------------------------------------------------------------------------------

    def _deployment(self) -> UUID:
        if self._deployment_id is None:
            self._deployment_id = self.api.ensure_deployment(
                FLOW_NAME, self.deployment, self.work_pool, ENTRYPOINT
            )
        return self._deployment_id

    def _observation(
        self, experiment_id: str, run_id: str, state: str, message: str | None
    ) -> Observation:
        meta: dict[str, Any] = {"prefect_flow_run_id": run_id, "prefect_state": state}
        result = self.api.result(run_id, result_key(experiment_id))
        if state == "CANCELLED":
            return Observation(experiment_id, Status.CANCELLED, error="cancelled", metadata=meta)
        if isinstance(result, dict) and result.get("status") in ("completed", "failed"):
            obs = Observation.from_dict(result)
            return Observation(
                experiment_id,
                obs.status,
                obs.outcomes,
                obs.cost,
                obs.started_at,
                obs.finished_at,
                obs.error,
                {**obs.metadata, **meta},
            )
        if state == "CRASHED":  # the flow process died (a worker or machine lost): may pass
            meta["transient"] = True
        return Observation.failed(
            experiment_id,
            f"flow run {run_id} ended {state} without a result: {message or 'no message'}",
            metadata=meta,
        )


def result_key(experiment_id: str) -> str:
    """The artifact key of an experiment's result (lower-case letters, digits, dashes)."""
    return "sciwm-" + re.sub(r"[^a-z0-9-]", "-", experiment_id.lower())


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]


def _unpack(handle: Handle) -> tuple[Path, str, str]:
    try:
        return Path(handle["dir"]), str(handle["experiment_id"]), str(handle["flow_run_id"])
    except (KeyError, TypeError):
        raise ConnectorError(
            f"{json.dumps(handle, default=str)} is not a prefect_pool handle (it needs "
            "experiment_id, dir and flow_run_id); pass the handle that submit returned"
        ) from None
