"""Figures read from Temporal histories: the largest payload, the longest history, and the
billable Actions recorded in a time window (Temporal Cloud's definition, as
bench/bench_engagement_actions.py counts them).

The window count is what a month-end costs when nothing else runs beside it: every
workflow's billable events between the close's start and its end (the close, its
continued-as-new runs and children, its posting run, and every engagement's part).
Heartbeats and queries leave no history and are not counted; the bench's own status
reads are queries, so leaving them out is right.

`counted_closes` is the other count, bench/close_actions.py's: each close's own tree (its
runs, every child, the updates and signals its activities sent to engagements, heartbeats
estimated), read from the same run's histories."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from bench.bench_engagement_actions import is_action
from bench.close_actions import close_actions

PAYLOAD = "temporal.api.common.v1.Payload"


def _payload_sizes(message: Message) -> Iterable[int]:
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if isinstance(value, Message):
            items = [value]
        elif descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:  # a repeated field
            items = list(value)
        for item in items:
            if not isinstance(item, Message):
                continue
            if item.DESCRIPTOR.full_name == PAYLOAD:
                yield item.ByteSize()
            else:
                yield from _payload_sizes(item)


def largest_payload(event: HistoryEvent) -> int:
    """The largest single payload in an event (encoded as stored: encrypted, with metadata)."""
    return max(_payload_sizes(event), default=0)


def billable(event: HistoryEvent) -> int:
    """Actions an event stands for: 1 if billable, plus the retries an activity start records."""
    count = 1 if is_action(event) else 0
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        count += max(0, event.activity_task_started_event_attributes.attempt - 1)
    return count


@dataclass
class HistoryFigures:
    histories: int = 0
    max_payload_bytes: int = 0
    max_payload_where: str = ""
    max_history_events: int = 0
    max_history_where: str = ""
    # (workflow type, event time, actions) of every billable event, for window counts
    actions: list[tuple[str, datetime, int]] = field(default_factory=list)

    def add(self, workflow_type: str, history: WorkflowHistory) -> None:
        self.histories += 1
        if len(history.events) > self.max_history_events:
            self.max_history_events, self.max_history_where = len(history.events), history.workflow_id
        for event in history.events:
            size = largest_payload(event)
            if size > self.max_payload_bytes:
                self.max_payload_bytes = size
                self.max_payload_where = (
                    f"{history.workflow_id} event {event.event_id} ({EventType.Name(event.event_type)})"
                )
            n = billable(event)
            if n:
                self.actions.append((workflow_type, event.event_time.ToDatetime(tzinfo=UTC), n))

    def actions_between(self, start: datetime, end: datetime, workflow_type: str | None = None) -> int:
        return sum(
            n for kind, at, n in self.actions if start <= at <= end and (workflow_type is None or kind == workflow_type)
        )


async def read_histories(client: Client, query: str = "", concurrency: int = 8) -> HistoryFigures:
    """Every run the visibility store lists for `query` (closed runs of a continue-as-new
    chain and child workflows are runs of their own), fetched `concurrency` at a time."""
    figures = HistoryFigures()
    gate = asyncio.Semaphore(concurrency)
    runs = [(wf.id, wf.run_id, wf.workflow_type) async for wf in client.list_workflows(query or None)]

    async def one(workflow_id: str, run_id: str | None, workflow_type: str) -> None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        figures.add(workflow_type, history)

    await asyncio.gather(*(one(*run) for run in runs))
    return figures


async def counted_closes(client: Client, closes: dict[str, str]) -> dict[str, Any]:
    """bench/close_actions.py's figures for each close (legal entity -> close workflow id):
    Actions per engagement over all of them, each close's Actions and engagements, and
    the Actions by kind."""
    found = {entity: await close_actions(client, workflow_id) for entity, workflow_id in closes.items()}
    engagements = sum(f.engagements for f in found.values())
    by_kind: Counter[str] = Counter()
    for f in found.values():
        by_kind.update(f.by_kind)
    return {
        "per_engagement": round(sum(f.total for f in found.values()) / max(engagements, 1), 3),
        "by_entity": {entity: f.total for entity, f in found.items()},
        "engagements_by_entity": {entity: f.engagements for entity, f in found.items()},
        "by_kind": dict(by_kind.most_common()),
    }
