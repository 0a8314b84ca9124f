"""Re-record the event poller's history: `python -m tests.replay.record_event_poll`.

Like `tests.replay.record`, run it only when a change to EventPollWorkflow is meant to be
incompatible with runs in flight (and then version the workflow)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.feeds import EventPollInput, EventPollResult, PollEventsInput
from contracts.queues import TaskQueues
from tests.conftest import TEST_CONVERTER, wheel_binary
from workflows.event_poll import EventPollWorkflow

HERE = Path(__file__).parent / "histories"


@activity.defn(name="feeds.poll")
async def poll(data: PollEventsInput) -> EventPollResult:
    return EventPollResult(
        watermark=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        started=["webhook-kantata-kantata:story:200003:completed:2026-11-20"],
        duplicates=1,
        skipped=2,
        raw_events=6,
    )


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    queue = f"rec-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EventPollWorkflow], activities=[poll]):
        handle = await env.client.start_workflow(
            EventPollWorkflow.run,
            EventPollInput(
                source="kantata", watermark=datetime(2026, 12, 1, 8, 59, tzinfo=UTC), queues=TaskQueues(psa=queue)
            ),
            id="poll-events-kantata",
            task_queue=queue,
        )
        await handle.result()
        history = await handle.fetch_history()
        (HERE / "event_poll.json").write_text(history.to_json())
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
