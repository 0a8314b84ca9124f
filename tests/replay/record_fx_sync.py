"""Re-record the FX sync history: `python -m tests.replay.record_fx_sync`.

Run it only when a change to FxSyncWorkflow is meant to be incompatible with runs in flight
(and then version the workflow)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.fx import FxCursor, FxSyncInput, FxSyncPageInput, FxSyncPageResult
from contracts.queues import TaskQueues
from tests.conftest import TEST_CONVERTER, wheel_binary
from workflows.fx_sync import FxSyncWorkflow

HERE = Path(__file__).parent / "histories"


@activity.defn(name="fx.sync_page")
async def sync_page(data: FxSyncPageInput) -> FxSyncPageResult:
    """Two instances: `erp-a` with two pages of rates, `erp-b` with one."""
    at = data.cursor
    if at.instance in (None, "erp-a") and at.position is None:
        return FxSyncPageResult(instance="erp-a", read=2, stored=2, next=FxCursor(instance="erp-a", position="2"))
    if at.instance == "erp-a":
        return FxSyncPageResult(instance="erp-a", read=1, stored=1, next=FxCursor(instance="erp-b"))
    return FxSyncPageResult(instance="erp-b", read=3, stored=0)


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    queue = f"rec-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[FxSyncWorkflow], activities=[sync_page]):
        handle = await env.client.start_workflow(
            FxSyncWorkflow.run,
            FxSyncInput(queues=TaskQueues(erp=queue), page_size=2),
            id="fx-sync-2026-11-30",
            task_queue=queue,
        )
        result = await handle.result()
        assert result.progress.pages == 3 and result.progress.read == 6
        history = await handle.fetch_history()
        (HERE / "fx_sync.json").write_text(history.to_json())
        print(f"recorded fx_sync: {len(history.events)} events")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
