"""The poll of a system that sends no webhooks: its feed read once, each business fact that
an engagement must hear about started as the same InboundEventWorkflow a webhook starts."""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.errors import translating_errors
from connectors.ports import EventFeed
from contracts.feeds import ROUTED_TYPES, EventPollResult, PollEventsInput, inbound_event_workflow_id
from contracts.inbound import InboundEvent


class FeedActivities:
    def __init__(self, client: Client | None, feeds: Mapping[str, EventFeed], workflow_task_queue: str) -> None:
        self._client = client
        self._feeds = dict(feeds)
        self._queue = workflow_task_queue

    @activity.defn(name="feeds.poll")
    @translating_errors
    async def poll(self, data: PollEventsInput) -> EventPollResult:
        feed = self._feeds.get(data.source)
        if feed is None or self._client is None:
            raise ApplicationError(
                f"no event feed named {data.source!r} is configured on this worker",
                type="ConfigurationError",
                non_retryable=True,
            )
        page = await feed.poll(data.created_after)
        result = EventPollResult(watermark=page.watermark, raw_events=page.raw_events)
        for event in page.events:
            if event.type not in ROUTED_TYPES:
                result.skipped += 1
                continue
            workflow_id = inbound_event_workflow_id(event.source, event.event_id)
            try:
                await self._client.start_workflow(
                    "InboundEventWorkflow",
                    InboundEvent(
                        source=event.source,
                        event_id=event.event_id,
                        type=event.type,
                        data=event.data,
                        queues=data.queues,
                    ),
                    id=workflow_id,
                    task_queue=self._queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"{event.type} from {event.source} (polled)",
                )
            except WorkflowAlreadyStartedError:
                result.duplicates += 1
                continue
            result.started.append(workflow_id)
        return result
