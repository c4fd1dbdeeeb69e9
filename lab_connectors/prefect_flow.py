"""The Prefect flow that runs one sciwm experiment on a work pool's worker.

The :mod:`~lab_connectors.prefect_pool` connector deploys :func:`sciwm_experiment` (entry
point ``lab_connectors.prefect_flow:sciwm_experiment``) on a work pool; a worker, on any
machine with sciwm and the experiment's code installed, picks each flow run up. The flow runs
the callable in a child process through :mod:`lab_connectors._local_worker` (time limit,
errors as values, wall time as cost), publishes the result as an artifact of the flow run
(``type = "sciwm-result"``), so it travels back through the Prefect API alone, and fails the
flow run when the experiment failed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.context import get_run_context

from lab_connectors._local_process import tail
from lab_connectors._local_worker import (
    EXPERIMENT_FILE,
    RESULT_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    read_json,
    write_json_atomic,
)

#: The artifact type of an experiment's result.
RESULT_TYPE = "sciwm-result"
FLOW_NAME = "sciwm-experiment"
ENTRYPOINT = "lab_connectors.prefect_flow:sciwm_experiment"


class ExperimentFailed(Exception):
    """The experiment failed; its result (with the error) is the flow run's artifact."""


def run_experiment(spec: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Run the experiment ``spec`` in a worker process under ``directory``; its result dict.

    Args:
        spec: The experiment (``Experiment.to_dict()``) plus ``function``, ``outcome``,
            ``timeout_s`` and ``timeout_reason``, as the local worker reads it.
        directory: An empty directory for the experiment's files.
    """
    write_json_atomic(directory / EXPERIMENT_FILE, spec)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    with open(directory / STDOUT_FILE, "ab") as out, open(directory / STDERR_FILE, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab_connectors._local_worker", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
        )
        try:
            code = proc.wait()
        finally:  # the flow run was cancelled or crashed: stop the experiment with it
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = read_json(directory / RESULT_FILE)
    if isinstance(result, dict):
        return result
    return {
        "experiment_id": spec["id"],
        "status": "failed",
        "outcomes": {},
        "cost": None,
        "started_at": None,
        "finished_at": None,
        "error": f"the experiment's worker process exited with status {code} without a result"
        + tail(directory / STDERR_FILE),
        "metadata": {},
    }


@flow(name=FLOW_NAME, log_prints=False, validate_parameters=False, persist_result=False)
def sciwm_experiment(spec: dict[str, Any], result_key: str) -> dict[str, Any]:
    """Run one experiment and publish its result as the artifact ``result_key``.

    Raises:
        ExperimentFailed: If the experiment failed (the flow run then ends ``FAILED``; the
            artifact holds the error).
    """
    with tempfile.TemporaryDirectory(prefix="sciwm-experiment-") as tmp:
        result = run_experiment(spec, Path(tmp))
    result.setdefault("metadata", {})["worker_host"] = socket.gethostname()
    publish(result, result_key)
    if result["status"] != "completed":
        raise ExperimentFailed(str(result.get("error")))
    return result


def publish(result: dict[str, Any], key: str) -> None:
    """Attach ``result`` to the current flow run as an artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=key,
                type=RESULT_TYPE,
                description=f"sciwm result of experiment {result['experiment_id']}",
                data=result,
                flow_run_id=flow_run.id if flow_run else None,
            )
        )
