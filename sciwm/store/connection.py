"""Reaching an MLflow tracking store: the default URI, the reachability check, error texts."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sciwm.errors import StoreError

# Table creation logs at INFO, and database errors at ERROR with a full traceback; sciwm turns
# the latter into one StoreError message (the cause stays chained for debugging).
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

HINT = (
    "Check MLFLOW_TRACKING_URI or [store] tracking_uri in the campaign file (unset both to use "
    "sqlite:///<current directory>/mlflow.db); for a tracking server, check that it is running "
    "and reachable from this machine"
)


def default_tracking_uri(root: Path | None = None) -> str:
    """The tracking URI sciwm uses when none is given.

    Args:
        root: Directory of the SQLite file (default: the current directory).

    Returns:
        ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db``.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(root or Path.cwd()).resolve()}/mlflow.db"


def redact_uri(uri: str) -> str:
    """``uri`` fit to show: a password in it (``user:pw@host`` or ``?password=``) is ``***``."""
    try:
        parts = urlsplit(uri)
        if parts.password is None and "password" not in parts.query.lower():
            return uri
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = parts.query
        if query and "password" in query.lower():
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if "password" in k.lower() else v) for k, v in pairs], safe="*"
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not a URL at all (a bad port, say): show the scheme only
        return uri.split("://", 1)[0] + "://***" if "://" in uri else uri


def without_secrets(text: str, uri: str) -> str:
    """``text`` with the URI's password replaced by ``***`` wherever it appears."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text.replace(uri, redact_uri(uri))


#: The PostgreSQL drivers SQLAlchemy picks for ``postgresql://`` and ``postgresql+psycopg2://``.
_DRIVERS = ("psycopg", "psycopg2")


def connect(tracking_uri: str) -> MlflowClient:
    """A client of the store at ``tracking_uri``, checked to answer.

    A tracking server is asked once, without retries and with a timeout of 20 s (a team's
    server may be busy), so that a wrong URI fails in seconds. Error messages never show a
    password from the URI.

    Raises:
        StoreError: Naming the URI, the cause and how to fix it.
    """
    try:
        client = _client_when_ready(tracking_uri)
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        reason = without_secrets(short_reason(exc), tracking_uri)
        if any(f"No module named '{d}'" in reason for d in _DRIVERS):
            reason += (
                "; MLflow needs a PostgreSQL driver for this URI: install sciwm's postgres "
                "extra (pip install 'sciwm[postgres]')"
            )
        if "://" not in tracking_uri or tracking_uri.startswith("file:"):
            reason = (
                "sciwm does not use MLflow's file store (a plain directory); give a "
                "database URI such as sqlite:///PATH/mlflow.db or a tracking server URL"
            )
        raise StoreError(
            f"cannot reach the MLflow tracking store at {redact_uri(tracking_uri)}: {reason}. "
            f"{HINT}."
        ) from exc
    return client


#: Errors of a SQLite store that another process is creating or writing at this moment.
_SQLITE_BUSY = ("already exists", "database is locked")


def _client_when_ready(tracking_uri: str, attempts: int = 8) -> MlflowClient:
    """Open and query the store; wait out another process creating the same SQLite file.

    Two processes opening a new SQLite store at once (a campaign starting while
    ``sciwm campaign status`` looks at it) race to create its tables; the loser sees "table
    ... already exists" or "database is locked" and succeeds once the winner is done.
    """
    for attempt in range(attempts):
        try:
            with (
                _fail_fast_http(),
                _sqlite_init_lock(tracking_uri),
                _database_init_lock(tracking_uri),
            ):
                client = MlflowClient(tracking_uri)
                client.search_experiments(max_results=1)
            return client
        except Exception as exc:
            busy = tracking_uri.startswith("sqlite:") and any(m in str(exc) for m in _SQLITE_BUSY)
            if not busy or attempt == attempts - 1:
                raise
            time.sleep(0.25 * (attempt + 1))
    raise AssertionError("unreachable")


#: Key of the PostgreSQL advisory lock sciwm processes take while MLflow creates its tables.
_PG_INIT_LOCK = 0x5C1A_0001


@contextmanager
def _database_init_lock(uri: str) -> Iterator[None]:
    """Connect once to a database server first, and serialise MLflow's table creation on it.

    MLflow retries a database it cannot reach for about 100 s before it gives up; one
    connection with a 10 s time-out makes a wrong host, port or password fail in seconds.
    Two processes creating MLflow's tables in a new PostgreSQL database at once collide
    (``duplicate key value violates unique constraint``); an advisory lock held on that
    connection makes them take turns. Other URIs pass straight through.
    """
    scheme = uri.split("://", 1)[0].lower().split("+")[0] if "://" in uri else ""
    if scheme not in ("postgresql", "mysql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            if scheme == "postgresql":
                conn.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({_PG_INIT_LOCK})"))
            try:
                yield
            finally:
                if scheme == "postgresql":
                    conn.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({_PG_INIT_LOCK})"))
    finally:
        engine.dispose()


@contextmanager
def _sqlite_init_lock(uri: str) -> Iterator[None]:
    """Serialise sciwm processes opening the same SQLite store (its tables are created then).

    MLflow creates or migrates a SQLite store's tables when a process first opens it; two
    processes doing so at once can leave a half-made table behind. A lock file next to the
    database (``mlflow.db.lock``) makes them take turns; other URIs need no lock.
    """
    path = sqlite_path(uri)
    if path is None or not path.parent.is_dir():
        yield
        return
    import fcntl

    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).resolve()


def sqlite_artifact_root(uri: str) -> Path | None:
    """``<dir of the db>/mlruns`` for a SQLite URI, else ``None``."""
    path = sqlite_path(uri)
    return None if path is None else path.parent / "mlruns"


@contextmanager
def _fail_fast_http() -> Iterator[None]:
    """No retries and a short timeout while checking that a tracking server answers."""
    fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
    saved = {k: os.environ.get(k) for k in fast}
    os.environ.update(fast)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def short_reason(exc: BaseException) -> str:
    """A one-line cause of a library exception (the OS error when there is one)."""
    text = str(exc).strip()
    found = re.search(r"\[Errno -?\d+\][^\"\n]*", text)
    if found:
        return found.group(0).rstrip(" :)")
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:300].rsplit(" ", 1)[0] + " ..."


def log_batched(
    client: MlflowClient,
    run_id: str,
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
) -> None:
    """``log_batch`` within MLflow's per-request limits; non-finite metrics are skipped.

    Params and metrics go first and tags (which hold an experiment's status) in the last
    request, so a crash in between never leaves a status without its data.
    """
    now = int(time.time() * 1000)
    ms = [
        Metric(k, float(v), now, step)
        for k, v in (metrics or {}).items()
        if v is not None and math.isfinite(v)
    ]
    ps = [Param(k, v) for k, v in (params or {}).items()]
    ts = [RunTag(k, v) for k, v in (tags or {}).items()]
    while ps or ms or ts:
        batch_p, ps = ps[:100], ps[100:]
        batch_m, ms = ms[:1000], ms[1000:]
        batch_t, ts = (ts[:100], ts[100:]) if not (ps or ms) else ([], ts)
        client.log_batch(run_id, metrics=batch_m, params=batch_p, tags=batch_t)
