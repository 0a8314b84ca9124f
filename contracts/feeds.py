"""The event poller's names: a system that sends no webhooks is polled on a Schedule and
its changes start the same InboundEventWorkflow the webhooks start."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from contracts.queues import TaskQueues

# The inbound event types an engagement must hear about at once; approvals of time and
# expenses reach the ERP with the batched posting run, so they start nothing.
ROUTED_TYPES = frozenset({"milestone.completed", "payment.received"})


def event_poll_schedule_id(source: str) -> str:
    return f"d2r-poll-events-{source}"


def event_poll_workflow_id(source: str) -> str:
    return f"poll-events-{source}"


def inbound_event_workflow_id(source: str, event_id: str) -> str:
    """`webhook-<source>-<event id>`: the id a webhook's event gets, so a fact that arrives
    twice (or both ways) is routed once."""
    return f"webhook-{source}-{event_id}"


class EventPollInput(BaseModel):
    source: str  # the polled system's instance name
    overlap_seconds: int = Field(600, ge=0)  # re-read this far back: late events are not lost
    watermark: datetime | None = None  # a first start's; scheduled runs take the last run's
    queues: TaskQueues = TaskQueues()


class PollEventsInput(BaseModel):
    source: str
    created_after: datetime | None = None
    queues: TaskQueues = TaskQueues()


class EventPollResult(BaseModel):
    watermark: datetime | None = None  # the newest event seen so far (carried to the next run)
    started: list[str] = Field(default_factory=list)  # inbound workflows started by this poll
    duplicates: int = 0  # facts already routed (repeats, overlapping windows, webhooks)
    skipped: int = 0  # facts that need no routing
    raw_events: int = 0  # vendor events read
