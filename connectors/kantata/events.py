"""Kantata's subscribed events as d2r inbound events.

Kantata keeps events 9 days, may repeat them and may generate them out of order
(`created_at` is when the event was made, `subject_changed_at` when the change
happened). So a poll reads everything created after the caller's watermark (the caller
overlaps its window), reconciles by subject — the latest `subject_changed_at` of each
subject is its state — and names each resulting event by its business fact, so a
repeat is the same event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.kantata.client import KantataClient
from connectors.ports import FeedEvent, FeedPage

SOURCE = "kantata"
EVENT_TYPES = ",".join(
    f"{subject}:{action}" for subject in ("story", "time_entry", "expense") for action in ("created", "updated")
)


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_event(subject_type: str, state: dict[str, Any], changed_at: datetime) -> FeedEvent | None:
    """The inbound event a subject's latest state means, if any."""
    sid = str(state["id"])
    if subject_type == "Story" and state.get("story_type") == "milestone" and state.get("state") == "completed":
        done = str(state.get("completed_at") or changed_at.date().isoformat())
        return FeedEvent(
            source=SOURCE,
            event_id=f"{SOURCE}:story:{sid}:completed:{done}",  # re-completed on another day: a new fact
            type="milestone.completed",
            subject=f"Story:{sid}",
            changed_at=changed_at,
            data={"milestone_id": sid, "project_id": str(state["workspace_id"]), "actual_date": done},
        )
    if subject_type in ("TimeEntry", "Expense") and state.get("approved"):
        kind = "timecard" if subject_type == "TimeEntry" else "expense"
        return FeedEvent(
            source=SOURCE,
            event_id=f"{SOURCE}:{kind}:{sid}:approved",
            type=f"{kind}.approved",
            subject=f"{subject_type}:{sid}",
            changed_at=changed_at,
            data={f"{kind}_id": sid, "project_id": str(state["workspace_id"])},
        )
    return None


class KantataEvents:
    def __init__(self, client: KantataClient) -> None:
        self._k = client

    async def poll(self, created_after: datetime | None) -> FeedPage:
        params: dict[str, Any] = {"event_types": EVENT_TYPES}
        if created_after is not None:
            params["created_after"] = created_after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        listing = await self._k.listing("subscribed_events", params)
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        watermark: datetime | None = None
        for event in listing.records:
            created = _when(str(event["created_at"]))
            watermark = created if watermark is None or created > watermark else watermark
            key = (str(event["subject_type"]), str(event["subject_id"]))
            seen = latest.get(key)
            # out of order: the change that happened last is the subject's state
            if seen is None or (_when(event["subject_changed_at"]), int(event["id"])) > (
                _when(seen["subject_changed_at"]),
                int(seen["id"]),
            ):
                latest[key] = event
        events = []
        for (subject_type, _sid), event in sorted(latest.items()):
            if str(event["event_type"]).endswith(":deleted"):
                continue
            made = to_event(subject_type, event.get("payload") or {}, _when(event["subject_changed_at"]))
            if made is not None:
                events.append(made)
        # the workspace's legal entity routes the event to the entity's PSA downstream
        spaces = sorted({str(e.data["project_id"]) for e in events})
        entity = await self._k.values_of("d2r legal entity", "Workspace", spaces) if spaces else {}
        for e in events:
            found = entity.get(str(e.data["project_id"]))
            if found and found.get("value"):
                e.data["legal_entity"] = str(found["value"])
        return FeedPage(events=events, watermark=watermark, raw_events=len(listing.records), subjects=len(latest))
