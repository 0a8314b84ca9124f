"""The pull side of inbound events: a system that sends no webhooks (Kantata's subscribed
events) is polled, and its changes come back as the same event types the webhooks carry.

`FeedEvent.event_id` names the business fact, not the vendor's event, so a fact the
vendor reports twice (repeats, overlapping poll windows) is one inbound event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field


class FeedEvent(BaseModel):
    source: str  # the system it came from, as in the webhook path
    event_id: str  # "<source>:<subject>:<fact>": the same fact always has the same id
    type: str  # "milestone.completed" | "timecard.approved" | "expense.approved"
    subject: str  # "<subject type>:<id>": what changed
    changed_at: datetime  # when it changed in the source (not when the event was made)
    data: dict[str, Any] = Field(default_factory=dict)


class FeedPage(BaseModel):
    events: list[FeedEvent] = Field(default_factory=list)
    watermark: datetime | None = None  # the newest event creation time seen
    raw_events: int = 0  # vendor events read (repeats included)
    subjects: int = 0  # distinct subjects among them


class EventFeed(Protocol):
    async def poll(self, created_after: datetime | None) -> FeedPage: ...
