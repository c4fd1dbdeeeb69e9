"""The Slurm connector: each experiment is a batch job on a Slurm cluster.

Each experiment gets a directory ``shared_dir/<experiment id>`` on a file system that the
compute nodes see too. It holds ``experiment.json`` and the rendered ``job.sh``; the job writes
``job_id``, ``job_started``, ``result.json`` (through :mod:`lab_connectors._local_worker`, the
same worker as the local connector's) and ``slurm.out``/``slurm.err``; once the job has
finished, the connector writes ``observation.json`` there and answers from it from then on.

Submission is idempotent: a submitted job's id is kept in ``handle.json``, and a job submitted
by a campaign that crashed before writing it is found again by its name (``sciwm-<id>``) and
comment, or by the ``job_id`` file it wrote once it started.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any, ClassVar

from lab_connectors import _slurm_commands as sc
from lab_connectors._local_process import tail
from lab_connectors._local_worker import EXPERIMENT_FILE, RESULT_FILE, read_json, write_json_atomic
from lab_connectors._slurm_check import check
from lab_connectors._slurm_settings import COST_UNITS, SlurmSettings, parse_settings, render
from sciwm.connector import Connector, Finding, Handle
from sciwm.errors import ConnectorError
from sciwm.experiment import Experiment, Observation, Status

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
HANDLE_FILE = "handle.json"
OBSERVATION_FILE = "observation.json"
SUBMITTING_FILE = "submitting"
CANCEL_FILE = "cancel_requested"
JOB_ID_FILE = "job_id"
JOB_STARTED_FILE = "job_started"
SCRIPT_FILE = "job.sh"
OUT_FILE, ERR_FILE = "slurm.out", "slurm.err"
#: Job states of a job the cluster lost or killed (its failure is transient).
_LOST_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "OUT_OF_MEMORY"})
#: Seconds past the job's time limit the worker's own watchdog waits (Slurm stops it first).
WATCHDOG_GRACE_S = 90.0


class SlurmConnector(Connector):
    """Runs ``package.module:function`` as one Slurm batch job per experiment.

    The job runs ``python -m lab_connectors._local_worker DIR`` on a compute node, which calls
    ``fn(**parameters)`` as the local connector does (a number, a dict of outcomes, or
    ``{"outcomes": ..., "cost": ...}``). The cost is the job's elapsed time in ``cost_unit``
    (seconds by default) unless the callable reports its own. An experiment's cost cap
    (``max_cost``, set by the dispatch gate) becomes the job's time limit in whole minutes
    (rounded up), and the worker stops the callable at the cap itself; without a cap the limit
    is ``time_limit_min``.

    Args:
        workdir: Directory owned by the connector for this campaign; stable across restarts.
        function: Import path of the callable, ``"package.module:function"``; the nodes'
            ``python`` must be able to import it and sciwm's ``lab_connectors``.
        shared_dir: Directory the submitting machine and the compute nodes both see
            (default: ``workdir``, fine when it is on a shared file system).
        partition: ``--partition``; left out, the cluster's default partition.
        time_limit_min: Time limit of a job whose experiment has no cost cap, in minutes.
        gpus, cpus_per_task, mem: ``--gpus``, ``--cpus-per-task``, ``--mem`` (e.g. ``"4G"``).
        setup: Shell lines run before the experiment (``module load ...``, ``source ...``).
        sbatch_options: Further ``#SBATCH`` options, e.g. ``["--account=lab", "--qos=short"]``.
        template: Path of a job-script template to use instead of ``slurm_job.sh``.
        python: Interpreter on the compute nodes, with sciwm installed (default: the one
            running sciwm, right when the nodes share its file system).
        env: Environment variables exported in the job script.
        outcome: Outcome name given to a bare number returned by the callable.
        cost_unit: ``"s"``, ``"min"`` or ``"h"``: the unit of the cost and of the cost cap.
        parallelism: How many jobs may be queued or running at once (:meth:`capacity`).
        slurm_bin: Directory of ``sbatch``/``squeue``/``scontrol``/``scancel`` if not on PATH.

    Raises:
        ConnectorError: If a setting is unknown or invalid.
    """

    name: ClassVar[str] = "slurm"

    def __init__(self, workdir: str | Path, **settings: Any) -> None:
        super().__init__(workdir, **settings)
        self.workdir = self.workdir.resolve()
        self.config: SlurmSettings = parse_settings(self.workdir, settings)
        self.config.shared_dir.mkdir(parents=True, exist_ok=True)

    # -- the contract ------------------------------------------------------------------------

    def submit(self, experiment: Experiment) -> Handle:
        """Submit ``experiment`` as a batch job; idempotent per ``experiment.id``.

        Raises:
            ConnectorError: If sbatch refuses the job (its message is included).
            SlurmUnreachable: If the controller cannot be reached (nothing is submitted).
        """
        if not _SAFE_ID.fullmatch(experiment.id):
            raise ConnectorError(
                f"experiment id {experiment.id!r} cannot name a directory or a job; use letters, "
                "digits, '_', '-' and '.' (ids from Experiment.create always can)"
            )
        exp_dir = self.config.shared_dir / experiment.id
        handle = read_json(exp_dir / HANDLE_FILE)
        if isinstance(handle, dict):
            return handle
        exp_dir.mkdir(parents=True, exist_ok=True)
        if (exp_dir / SUBMITTING_FILE).exists():  # crashed between sbatch and the handle?
            job_id = self._earlier_job(exp_dir, experiment.id)
            if job_id is not None:
                return self._write_handle(exp_dir, experiment.id, job_id)
        write_json_atomic(exp_dir / EXPERIMENT_FILE, self._experiment_record(experiment))
        script = exp_dir / SCRIPT_FILE
        script.write_text(self.job_script(experiment, exp_dir))
        (exp_dir / SUBMITTING_FILE).write_text(f"{time.time()}\n")
        minutes = self.config.limit_minutes(experiment.max_cost)
        cmd = [
            self.config.command("sbatch"),
            "--parsable",
            f"--job-name={job_name(experiment.id)}",
            f"--comment={job_comment(exp_dir)}",
            f"--output={exp_dir / OUT_FILE}",
            f"--error={exp_dir / ERR_FILE}",
            f"--time={minutes}",
            "--no-requeue",
            str(script),
        ]
        out = sc.run(cmd, f"submit experiment {experiment.id}")
        if out.returncode != 0:
            raise ConnectorError(
                f"sbatch refused the job of experiment {experiment.id}: "
                f"{sc.first_line(out.stderr)}. The job script is {script}; check the slurm "
                "connector's partition, gpus, mem and sbatch_options settings against the "
                "cluster (`sinfo` lists its partitions)."
            )
        return self._write_handle(exp_dir, experiment.id, sc.parse_job_id(out.stdout))

    def poll(self, handle: Handle) -> Status:
        """Status of the job: ``RUNNING`` while it is queued or running."""
        exp_dir, experiment_id, job_id = _unpack(handle)
        done = read_json(exp_dir / OBSERVATION_FILE)
        if isinstance(done, dict):
            return Status(done["status"])
        fields = sc.show_job(self.config.command("scontrol"), job_id)
        if fields is not None and sc.job_state(fields) in sc.ACTIVE_STATES:
            return Status.RUNNING
        return self._conclude(exp_dir, experiment_id, job_id, fields)

    def fetch(self, handle: Handle) -> Observation:
        """The observation of a finished job.

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
        """``scancel`` the job; a finished experiment is left as it is."""
        exp_dir, experiment_id, job_id = _unpack(handle)
        if self.poll(handle).finished:
            return
        (exp_dir / CANCEL_FILE).write_text(f"{time.time()}\n")
        out = sc.run([self.config.command("scancel"), job_id], f"cancel job {job_id}")
        if out.returncode != 0 and "already completing or completed" not in out.stderr:
            raise ConnectorError(
                f"scancel {job_id} (experiment {experiment_id}) failed: {sc.first_line(out.stderr)}"
            )

    def capacity(self) -> int:
        """``parallelism`` minus this campaign's jobs that are queued or running."""
        running = 0
        for handle_file in self.config.shared_dir.glob(f"*/{HANDLE_FILE}"):
            if (handle_file.parent / OBSERVATION_FILE).exists():
                continue
            handle = read_json(handle_file)
            if isinstance(handle, dict) and self.poll(handle) is Status.RUNNING:
                running += 1
        return max(self.config.parallelism - running, 0)

    def check(self) -> list[Finding]:
        """Slurm's commands present, slurmctld answering, the partition up, shared_dir writable."""
        return check(self.config)

    # -- the job script ----------------------------------------------------------------------

    def job_script(self, experiment: Experiment, exp_dir: Path) -> str:
        """The job script of ``experiment``: the template with its placeholders filled in."""
        q = shlex.quote
        d = str(exp_dir)
        exports = [f"export {k}={q(v)}" for k, v in self.config.env.items()]
        run = [
            *exports,
            f'echo "$SLURM_JOB_ID" > {q(d + "/" + JOB_ID_FILE)}',
            f"date +%s.%N > {q(d + '/' + JOB_STARTED_FILE)}",
            f"exec {q(self.config.python)} -m lab_connectors._local_worker {q(d)}",
        ]
        return render(
            self.config.template,
            {
                "directives": self.config.directives(),
                "setup": "\n".join(self.config.setup),
                "run": "\n".join(run),
                "experiment_id": experiment.id,
                "experiment_dir": q(d),
                "job_name": job_name(experiment.id),
            },
        )

    # -- helpers -------------------------------------------------------------------------------

    def _experiment_record(self, experiment: Experiment) -> dict[str, Any]:
        unit_s = COST_UNITS[self.config.cost_unit]
        minutes = self.config.limit_minutes(experiment.max_cost)
        if experiment.max_cost is not None:
            timeout = experiment.max_cost * unit_s
            reason = f"this experiment's budget cap max_cost={experiment.max_cost:g}"
        else:
            timeout = minutes * 60.0 + WATCHDOG_GRACE_S
            reason = f"the job's time limit of {minutes} min"
        return {
            **experiment.to_dict(),
            "function": self.config.function,
            "outcome": self.config.outcome,
            "timeout_s": timeout,
            "timeout_reason": reason,
            "time_limit_min": minutes,
        }

    def _earlier_job(self, exp_dir: Path, experiment_id: str) -> str | None:
        found = sc.find_job(
            self.config.command("squeue"), job_name(experiment_id), job_comment(exp_dir)
        )
        if found is not None:
            return found
        started = (
            (exp_dir / JOB_ID_FILE).read_text().strip() if (exp_dir / JOB_ID_FILE).exists() else ""
        )
        return started if started.isdigit() else None

    def _write_handle(self, exp_dir: Path, experiment_id: str, job_id: str) -> Handle:
        handle = {"experiment_id": experiment_id, "dir": str(exp_dir), "job_id": job_id}
        write_json_atomic(exp_dir / HANDLE_FILE, handle)
        return handle

    def _conclude(
        self, exp_dir: Path, experiment_id: str, job_id: str, fields: dict[str, str] | None
    ) -> Status:
        """Write the final observation of a job that has left the active states."""
        obs = self._observation(exp_dir, experiment_id, job_id, fields)
        write_json_atomic(exp_dir / OBSERVATION_FILE, obs.to_dict())
        return obs.status

    def _observation(
        self, exp_dir: Path, experiment_id: str, job_id: str, fields: dict[str, str] | None
    ) -> Observation:
        state = sc.job_state(fields) if fields is not None else "GONE"
        result = read_json(exp_dir / RESULT_FILE)
        run_time = sc.duration_s(fields.get("RunTime")) if fields else None
        meta: dict[str, Any] = {"slurm_job_id": job_id, "slurm_state": state}
        if fields:
            meta.update(slurm_exit_code=fields.get("ExitCode"), node=fields.get("NodeList"))
        if run_time is not None:
            meta["slurm_run_time_s"] = run_time
        started = _float_file(exp_dir / JOB_STARTED_FILE)
        unit_s = COST_UNITS[self.config.cost_unit]
        if isinstance(result, dict) and result.get("status") in ("completed", "failed"):
            obs = Observation.from_dict(result)
            meta = {**obs.metadata, **meta}
            cost = obs.cost
            if obs.metadata.get("cost_source") != "reported":
                end = obs.finished_at or time.time()
                elapsed = end - started if started is not None else run_time
                cost = None if elapsed is None else max(elapsed, 1e-3) / unit_s
                meta["cost_source"] = "slurm_elapsed"
            start = started or obs.started_at
            return Observation(
                experiment_id,
                obs.status,
                obs.outcomes,
                cost,
                start,
                obs.finished_at,
                obs.error,
                meta,
            )
        cost = None if run_time is None else run_time / unit_s
        times = {"started_at": started, "finished_at": time.time()}
        if state == "CANCELLED" or (exp_dir / CANCEL_FILE).exists():
            return Observation(
                experiment_id,
                Status.CANCELLED,
                cost=cost,
                error="cancelled",
                metadata=meta,
                **times,
            )
        if state == "TIMEOUT":
            limit = fields.get("TimeLimit") if fields else "?"
            error = f"the job hit its time limit ({limit}) and Slurm stopped it (TIMEOUT)"
            meta["timed_out"] = True
        elif state == "GONE":
            error = f"job {job_id} is no longer known to Slurm and left no result in {exp_dir}"
            meta["transient"] = True  # lost by the cluster: it may pass when tried again
        else:
            exit_code = fields.get("ExitCode", "?") if fields else "?"
            error = f"job {job_id} ended {state} (exit code {exit_code}) without a result"
            signal = exit_code.partition(":")[2]
            # killed under the job (a signal, a node lost, preempted): it may pass again; a
            # job script that exits non-zero by itself would fail the same way again
            if state in _LOST_STATES or (signal.isdigit() and int(signal) != 0):
                meta["transient"] = True
        return Observation.failed(
            experiment_id, error + tail(exp_dir / ERR_FILE), cost, metadata=meta, **times
        )


def job_name(experiment_id: str) -> str:
    """The Slurm job name of an experiment."""
    return f"sciwm-{experiment_id}"


def job_comment(exp_dir: Path) -> str:
    """The job comment: ``sciwm:`` and a digest of the experiment's directory."""
    return "sciwm:" + hashlib.sha256(str(exp_dir).encode()).hexdigest()[:16]


def _float_file(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _unpack(handle: Handle) -> tuple[Path, str, str]:
    try:
        exp_dir, experiment_id = Path(handle["dir"]), str(handle["experiment_id"])
        job_id = str(handle["job_id"])
    except (KeyError, TypeError):
        raise ConnectorError(
            f"{json.dumps(handle, default=str)} is not a slurm connector handle (it needs "
            "experiment_id, dir and job_id); pass the handle that submit returned"
        ) from None
    if not exp_dir.is_dir():
        raise ConnectorError(
            f"the directory of experiment {experiment_id}, {exp_dir}, does not exist; was the "
            "slurm connector's shared_dir moved or deleted?"
        )
    return exp_dir, experiment_id, job_id
