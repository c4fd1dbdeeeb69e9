"""The Prefect flow really runs (against a temporary Prefect database) and records to MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciwm.runtime import configure_environment
from tests.flows.conftest import write_campaign

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    configure_environment(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_campaign_flow_runs_fit_and_dispatch_as_tasks(prefect_harness, campaign_dir: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.campaign import campaign_flow
    from sciwm.store import RecordStore, default_tracking_uri

    spec = write_campaign(campaign_dir, "flow-e2e", max_experiments=5, initial=3)
    state = campaign_flow(str(spec), str(campaign_dir), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result.n_experiments == 5 and result.n_completed == 5

    records = RecordStore(default_tracking_uri(campaign_dir)).records("flow-e2e")
    assert len(records) == 5

    # the flow run and its task runs are in Prefect's database
    import asyncio

    async def task_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
            return [r.name for r in runs]

    names = asyncio.run(task_names())
    assert any(n.startswith("fit-world-model") for n in names)
    assert sum(n.startswith("propose-gate-dispatch") for n in names) >= 3
