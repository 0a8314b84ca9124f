"""Kantata's pull-only events as d2r inbound events: repeats and out-of-order generation
reconcile to one event per business fact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.kantata.events import KantataEvents, _when
from tests.connectors.kantata_env import Kantata, de_engagement, kantata


@pytest.fixture
async def kt(tmp_path: Path) -> AsyncIterator[Kantata]:
    async for made in kantata(tmp_path, event_lag_max_s=0.3):
        yield made


async def test_repeated_and_reordered_events_are_one_event_per_fact(kt: Kantata) -> None:
    ref = await kt.psa.create_project(de_engagement(), "engagement-006KT0000000001:project")
    feed = KantataEvents(kt.client)
    first = await feed.poll(None)
    assert first.events == []  # a new workspace and open milestones are no inbound fact
    assert first.watermark is not None

    await kt.admin.faults(webhook_duplicate_rate=1.0, webhook_reorder=True, seed=11)
    milestone = ref.milestone_ids[0]
    # the milestone goes back and forth and ends completed; every change is reported twice,
    # and the events are made late, in another order than the changes
    for state in ("started", "completed", "started", "completed"):
        await kt.put("stories", "story", milestone, {"state": state, "completed_at": None})
    entry = await kt.log_time(ref.project_id, kt.user("Konrad Zuse"), "2026-11-03", 60)
    await kt.admin.clear_faults()
    await asyncio.sleep(0.35)  # every late event made

    page = await feed.poll(first.watermark)
    assert page.raw_events == 2 * (4 + 2)  # four milestone changes, a time entry created and approved
    assert page.subjects == 2
    assert [(e.type, e.subject) for e in page.events] == [
        ("milestone.completed", f"Story:{milestone}"),
        ("timecard.approved", f"TimeEntry:{entry}"),
    ]
    done = page.events[0]
    assert done.data["milestone_id"] == milestone and done.data["project_id"] == ref.project_id
    assert done.data["legal_entity"] == "DE01"  # routes the milestone to DE01's PSA
    # polled again over an overlapping window, the same facts come back under the same ids
    overlap = await feed.poll(first.watermark - timedelta(minutes=10))
    assert [e.event_id for e in overlap.events] == [e.event_id for e in page.events]
    # nothing new after the watermark
    assert (await feed.poll(page.watermark)).events == []

    # reopened: its latest state is not completed, so no completion event
    await kt.put("stories", "story", milestone, {"state": "started"})
    reopened = await feed.poll(page.watermark)
    assert reopened.events == [] and reopened.subjects == 1


async def test_the_latest_change_wins_whatever_the_order_of_the_events(kt: Kantata) -> None:
    """Kantata lists events by creation; the subject's state is its last *change*."""
    ref = await kt.psa.create_project(de_engagement(), "engagement-006KT0000000001:project")
    feed = KantataEvents(kt.client)
    since = (await feed.poll(None)).watermark
    assert since is not None
    milestone = ref.milestone_ids[1]
    for seed in range(1, 40):
        await kt.admin.faults(webhook_reorder=True, seed=seed)
        await kt.put("stories", "story", milestone, {"state": "completed"})
        await kt.put("stories", "story", milestone, {"state": "started"})
        await kt.admin.clear_faults()
        await asyncio.sleep(0.35)
        body = (
            await kt.raw.get(
                "/api/v1/subscribed_events", params={"created_after": since.isoformat(), "event_types": "story:updated"}
            )
        ).json()
        events = [body["subscribed_events"][r["id"]] for r in body["results"]]
        if [e["payload"]["state"] for e in events] == ["started", "completed"]:  # made in the opposite order
            page = await feed.poll(since)
            assert page.raw_events == 2 and page.events == []  # started happened last: no completion
            return
        since = max(_when(e["created_at"]) for e in events)
    pytest.fail("no seed made the events out of order")
