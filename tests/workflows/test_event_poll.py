"""EventPollWorkflow: the watermark moves run to run (as the Schedule's last completion
result), each poll overlaps the last, and the poll activity starts one InboundEventWorkflow
per business fact, however often the feed repeats it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.feeds import FeedActivities
from connectors.ports import FeedEvent, FeedPage
from contracts.feeds import EventPollInput, EventPollResult, PollEventsInput
from contracts.queues import TaskQueues
from workflows.event_poll import EventPollWorkflow

T1 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def test_each_poll_overlaps_the_last_and_the_watermark_never_moves_back(env: WorkflowEnvironment) -> None:
    seen: list[PollEventsInput] = []
    answers = [EventPollResult(watermark=T1, raw_events=3), EventPollResult(watermark=None)]

    @activity.defn(name="feeds.poll")
    async def poll(data: PollEventsInput) -> EventPollResult:
        seen.append(data)
        return answers[len(seen) - 1]

    queue = f"poll-{uuid.uuid4()}"
    queues = TaskQueues(psa=queue)
    async with Worker(env.client, task_queue=queue, workflows=[EventPollWorkflow], activities=[poll]):
        first = await env.client.execute_workflow(
            EventPollWorkflow.run,
            EventPollInput(source="kantata", queues=queues),
            id=f"poll-1-{queue}",
            task_queue=queue,
            result_type=EventPollResult,
        )
        second = await env.client.execute_workflow(
            EventPollWorkflow.run,
            EventPollInput(source="kantata", watermark=first.watermark, overlap_seconds=600, queues=queues),
            id=f"poll-2-{queue}",
            task_queue=queue,
            result_type=EventPollResult,
        )
    assert seen[0].created_after is None  # the first poll reads the whole feed (9 days)
    assert seen[1].created_after == T1 - timedelta(seconds=600)  # late events are read again
    assert first.watermark == T1 and second.watermark == T1  # an empty poll keeps the watermark


async def test_a_scheduled_run_takes_the_last_runs_watermark(own_env: WorkflowEnvironment) -> None:
    """Runs a minute apart (cron, as a Schedule would), on a server of its own: the clock is
    skipped, and no other test's idle workflow may hold it back."""
    env = own_env
    seen: list[PollEventsInput] = []

    @activity.defn(name="feeds.poll")
    async def poll(data: PollEventsInput) -> EventPollResult:
        seen.append(data)
        return EventPollResult(watermark=T1 + timedelta(minutes=len(seen)))

    queue = f"poll-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EventPollWorkflow], activities=[poll]):
        handle = await env.client.start_workflow(
            EventPollWorkflow.run,
            EventPollInput(source="kantata", overlap_seconds=60, queues=TaskQueues(psa=queue)),
            id=f"poll-cron-{queue}",
            task_queue=queue,
            cron_schedule="* * * * *",
        )
        for _ in range(10):
            if len(seen) >= 3:
                break
            await env.sleep(timedelta(minutes=1))
        await handle.terminate()
    assert seen[0].created_after is None
    # each run starts where the previous one ended, less the overlap
    assert seen[1].created_after == T1 + timedelta(minutes=1) - timedelta(seconds=60)
    assert seen[2].created_after == T1 + timedelta(minutes=2) - timedelta(seconds=60)


class RepeatingFeed:
    """A feed that reports the same completion on every poll (Kantata repeats events)."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, created_after: datetime | None) -> FeedPage:
        self.polls += 1
        done = FeedEvent(
            source="kantata",
            event_id="kantata:story:200003:completed:2026-11-20",
            type="milestone.completed",
            subject="Story:200003",
            changed_at=T1,
            data={"milestone_id": "200003", "project_id": "50002", "actual_date": "2026-11-20"},
        )
        approved = done.model_copy(update={"event_id": "kantata:timecard:700001:approved", "type": "timecard.approved"})
        return FeedPage(events=[done, approved], watermark=T1, raw_events=4, subjects=2)


async def test_a_repeated_fact_starts_one_inbound_workflow(env: WorkflowEnvironment) -> None:
    queue = f"inbound-{uuid.uuid4()}"  # no worker: the started workflows just wait
    acts = FeedActivities(env.client, {"kantata": RepeatingFeed()}, workflow_task_queue=queue)
    first = await acts.poll(PollEventsInput(source="kantata"))
    again = await acts.poll(PollEventsInput(source="kantata"))
    assert first.started == ["webhook-kantata-kantata:story:200003:completed:2026-11-20"]
    assert (first.duplicates, first.skipped) == (0, 1)  # an approval reaches posting in batch
    assert (again.started, again.duplicates) == ([], 1)
    described = await env.client.get_workflow_handle(first.started[0]).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    await env.client.get_workflow_handle(first.started[0]).terminate()


def test_a_polled_system_gets_a_schedule_a_minute_and_the_rest_none() -> None:
    from connectors.registry import polled_instances
    from workers.schedules import _schedules
    from workers.settings import TemporalSettings

    polled = polled_instances({"default": None, "kantata": "kantata"})
    assert polled == ["kantata"]  # Certinia (the default PSA) sends webhooks
    wanted = _schedules(TemporalSettings(), ["DE01"], 1, 1, "UTC", polled)
    poll = wanted["d2r-poll-events-kantata"]
    assert [i.every for i in poll.spec.intervals] == [timedelta(minutes=1)]
    assert poll.action.id == "poll-events-kantata"  # type: ignore[attr-defined]
    assert not [k for k in wanted if k.startswith("d2r-poll-events-") and k != "d2r-poll-events-kantata"]
