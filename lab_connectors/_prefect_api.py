"""The Prefect API calls of the prefect_pool connector, with errors turned into sciwm's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from sciwm.connector import Finding
from sciwm.errors import BackendUnavailable, ConnectorError

#: Flow-run state types of a run that has not finished.
ACTIVE = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})
T = TypeVar("T")


class PrefectApi:
    """A synchronous client of one Prefect API, opened on first use.

    Args:
        url: The API's URL (``http://host:4200/api``); ``None`` for the active profile's.
    """

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._client: Any = None

    @property
    def where(self) -> str:
        return self.url or "the Prefect API of the active profile (PREFECT_API_URL unset)"

    def close(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    # -- calls -----------------------------------------------------------------------------

    def ensure_deployment(self, flow: str, name: str, pool: str, entrypoint: str) -> UUID:
        """Create (or update) deployment ``flow/name`` on ``pool``; returns its id.

        Raises:
            ConnectorError: If the work pool does not exist.
        """
        from prefect.exceptions import ObjectNotFound

        def create(client: Any) -> UUID:
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                raise ConnectorError(
                    f"the work pool {pool!r} does not exist at {self.where}; create it with "
                    f"`prefect work-pool create {pool} --type process` and start a worker with "
                    f"`prefect worker start --pool {pool}`, or fix the work_pool setting"
                ) from None
            flow_id = client.create_flow_from_name(flow)
            return client.create_deployment(
                flow_id=flow_id,
                name=name,
                work_pool_name=pool,
                entrypoint=entrypoint,
                enforce_parameter_schema=False,
                description="sciwm experiments: one flow run per experiment",
                tags=["sciwm"],
            )

        return self._call(f"create the deployment {flow}/{name} on pool {pool!r}", create)

    def create_run(
        self,
        deployment_id: UUID,
        parameters: dict[str, Any],
        name: str,
        idempotency_key: str,
        work_queue: str | None,
        job_variables: dict[str, Any],
    ) -> str:
        """A flow run of the deployment; the same ``idempotency_key`` gives the same run."""

        def create(client: Any) -> str:
            run = client.create_flow_run_from_deployment(
                deployment_id,
                parameters=parameters,
                name=name,
                tags=["sciwm"],
                idempotency_key=idempotency_key,
                work_queue_name=work_queue,
                job_variables=job_variables or None,
            )
            return str(run.id)

        return self._call(f"create flow run {name}", create)

    def run_state(self, run_id: str) -> tuple[str, str | None]:
        """``(state type, state message)`` of a flow run, e.g. ``("COMPLETED", None)``."""

        def read(client: Any) -> tuple[str, str | None]:
            state = client.read_flow_run(UUID(run_id)).state
            if state is None:
                return "SCHEDULED", None
            return str(state.type.value), state.message

        return self._call(f"read flow run {run_id}", read)

    def result(self, run_id: str, key: str) -> dict[str, Any] | None:
        """The ``sciwm-result`` artifact ``key`` of a flow run, or ``None``."""
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        def read(client: Any) -> dict[str, Any] | None:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]),
                ),
                limit=1,
            )
            data = found[0].data if found else None
            return data if isinstance(data, dict) else None

        return self._call(f"read the result of flow run {run_id}", read)

    def cancel_run(self, run_id: str) -> None:
        """Cancel a flow run: at once if no worker has it yet, else through its worker."""
        from prefect.states import Cancelled, Cancelling

        def cancel(client: Any) -> None:
            state = client.read_flow_run(UUID(run_id)).state
            kind = state.type.value if state else "SCHEDULED"
            if kind not in ACTIVE:
                return
            new = Cancelled() if kind in ("SCHEDULED", "PAUSED") else Cancelling()
            client.set_flow_run_state(UUID(run_id), new, force=True)

        self._call(f"cancel flow run {run_id}", cancel)

    # -- internals ---------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            from prefect.client.orchestration import SyncPrefectClient, get_client

            client = SyncPrefectClient(self.url) if self.url else get_client(sync_client=True)
            client.__enter__()
            self._client = client
        return self._client

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        with translated(self.where, what):
            return fn(self.client())


@contextmanager
def translated(where: str, what: str) -> Iterator[None]:
    """Network failures become :class:`BackendUnavailable`, API refusals :class:`ConnectorError`."""
    import httpx

    try:
        yield
    except (ConnectorError, BackendUnavailable):
        raise
    except (httpx.TransportError, OSError) as exc:
        raise BackendUnavailable(
            f"the Prefect API at {where} cannot be reached to {what} ({type(exc).__name__}: "
            f"{exc}); start it (`prefect server start`) or fix api_url / PREFECT_API_URL"
        ) from None
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        text = exc.response.text[:300]
        if code in (502, 503, 504):
            raise BackendUnavailable(
                f"the Prefect API at {where} answered {code} to {what}"
            ) from None
        raise ConnectorError(
            f"the Prefect API at {where} refused to {what}: {code} {text}"
        ) from None


def check(api: PrefectApi, pool: str, flow: str, deployment: str) -> list[Finding]:
    """Findings on the Prefect API, the work pool, its workers and the deployment."""
    from prefect.exceptions import ObjectNotFound

    try:
        client = api.client()
        problem = client.api_healthcheck()
    except Exception as exc:  # noqa: BLE001 - reported as a finding
        problem = exc
    if problem is not None:
        return [
            Finding(
                "reachable",
                False,
                f"the Prefect API at {api.where} does not answer: {problem}",
                "start it (`prefect server start`) or set api_url / PREFECT_API_URL",
            )
        ]
    found = [Finding("reachable", True, f"the Prefect API at {api.where} answers")]
    try:
        work_pool = client.read_work_pool(pool)
    except ObjectNotFound:
        return found + [
            Finding(
                "queue",
                False,
                f"the work pool {pool!r} does not exist",
                f"`prefect work-pool create {pool} --type process`, or fix work_pool",
            )
        ]
    found.append(Finding("queue", True, f"work pool {pool!r} ({work_pool.type}) exists"))
    workers = client.read_workers_for_work_pool(pool)
    online = [w.name for w in workers if str(getattr(w.status, "value", w.status)) == "ONLINE"]
    if online:
        found.append(Finding("workers", True, f"{len(online)} worker(s) online: {online[:5]}"))
    else:
        found.append(
            Finding(
                "workers",
                False,
                f"no worker of pool {pool!r} is online; flow runs would wait",
                f"start one: `prefect worker start --pool {pool}` (sciwm installed there)",
            )
        )
    try:
        client.read_deployment_by_name(f"{flow}/{deployment}")
        found.append(Finding("deployment", True, f"deployment {flow}/{deployment} exists"))
    except ObjectNotFound:
        found.append(
            Finding("deployment", True, f"deployment {flow}/{deployment} is made on first use")
        )
    return found
