"""EventPollWorkflow: one poll of a system that sends no webhooks, run by a Schedule.

Each run reads the events created since the previous run's watermark (less an overlap,
since events may be made late), and the poll activity starts one InboundEventWorkflow per
business fact, id'd like a webhook's, so repeats and overlaps start nothing twice. The
watermark travels from run to run as the Schedule's last completion result.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.feeds import EventPollInput, EventPollResult, PollEventsInput
    from contracts.retry import PAGE_ATTEMPTS, retry_policy


@workflow.defn(name="EventPollWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class EventPollWorkflow:
    @workflow.run
    async def run(self, data: EventPollInput) -> EventPollResult:
        watermark = data.watermark
        if watermark is None and workflow.has_last_completion_result():
            last = workflow.get_last_completion_result(EventPollResult)
            watermark = last.watermark if last is not None else None
        since = watermark - timedelta(seconds=data.overlap_seconds) if watermark is not None else None
        result: EventPollResult = await workflow.execute_activity(
            "feeds.poll",
            PollEventsInput(source=data.source, created_after=since, queues=data.queues),
            result_type=EventPollResult,
            task_queue=data.queues.psa,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=retry_policy(PAGE_ATTEMPTS),
            summary=f"Events from {data.source} since {since.isoformat() if since else 'the start of its feed'}",
        )
        # never move back: a poll that saw nothing keeps the last watermark
        if watermark is not None and (result.watermark is None or result.watermark < watermark):
            result.watermark = watermark
        return result
