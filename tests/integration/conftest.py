"""Fixtures that start real servers on loopback for the integration tests.

Each server is started once per test session by the first test that needs it and stopped at
the end. A server that is not installed fails its tests with the name of the script in
``.ci/services/`` that installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.services.postgres import MlflowServer, PostgresServer
from tests.integration.services.prefect import PrefectServer, PrefectWorker
from tests.integration.services.slurm import SlurmCluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node Slurm; ``SLURM_CONF`` points at it for the whole session."""
    # not under pytest's tmp dir: the munge and slurm users must reach it (pytest's is 0700)
    scratch = Path(tempfile.mkdtemp(prefix="sciwm-slurm-"))
    cluster = SlurmCluster(scratch)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(cluster.env)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL on a loopback port (password authentication)."""
    try:
        import psycopg  # noqa: F401 - the driver MLflow's postgresql:// URIs need
    except ImportError:
        pytest.fail("no PostgreSQL driver: pip install -e '.[postgres]'", pytrace=False)
    scratch = Path(tempfile.mkdtemp(prefix="sciwm-pg-"))  # the postgres user must reach it
    server = PostgresServer(scratch)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """``mlflow server`` on a loopback port, its backend store a PostgreSQL database."""
    server = MlflowServer(
        postgres.create_database("mlflow_server"), tmp_path_factory.mktemp("mlflow-server")
    )
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """``prefect server start`` on a loopback port, with a home of its own."""
    server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


#: The work pool the integration tests' worker polls.
POOL = "sciwm-test-pool"


@pytest.fixture(scope="session")
def prefect_worker(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectWorker]:
    """A process work pool on the server and a worker of it, running this checkout's code."""
    worker = PrefectWorker(
        prefect_server,
        POOL,
        tmp_path_factory.mktemp("prefect-worker"),
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        worker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield worker
    finally:
        worker.stop()
