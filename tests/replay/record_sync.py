"""Re-record the source sync histories: `python -m tests.replay.record_sync`.

Like `tests.replay.record`, run it only when a change to SourceSyncWorkflow is meant to be
incompatible with runs in flight (and then version the workflow)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.queues import TaskQueues
from contracts.source_sync import SourceSyncInput
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.workflows.sync_fakes import FakeSync
from workflows.source_sync import SourceSyncWorkflow

HERE = Path(__file__).parent / "histories"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    fake = FakeSync(projects=5)
    queue = f"rec-{uuid.uuid4()}"
    queues = TaskQueues(crm=queue, psa=queue, erp=queue)
    async with Worker(env.client, task_queue=queue, workflows=[SourceSyncWorkflow], activities=fake.activities()):
        for name, data, workflow_id in (
            (
                "source_sync",
                SourceSyncInput(
                    legal_entity="US01", period="2026-11", queues=queues, projects_per_page=2, reconcile=True
                ),
                "sync-US01-2026-11",
            ),
            (
                "source_sync_scheduled",
                SourceSyncInput(legal_entity="US01", queues=queues),
                "sync-US01-scheduled-2026-11-26T03:00:00Z",
            ),
        ):
            handle = await env.client.start_workflow(SourceSyncWorkflow.run, data, id=workflow_id, task_queue=queue)
            await handle.result()
            history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
