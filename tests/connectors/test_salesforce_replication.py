"""The Salesforce client's incremental-sync calls against the simulator: getUpdated and
getDeleted over a window (what a replication sweep asks), and queryAll with IsDeleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.connectors.conftest import Salesforce


async def test_a_sweep_sees_changes_and_deletions_in_its_window(sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    kept = await sf.client.create("Account", {"Name": "Sweep Co"})
    gone = await sf.client.create("Account", {"Name": "Swept Co"})
    assert await sf.client.delete("Account", gone)
    end = datetime.now(UTC) + timedelta(minutes=2)
    updated = await sf.client.updated("Account", start, end)
    assert kept in updated.ids and gone not in updated.ids
    assert updated.latest_covered <= end and updated.latest_covered.second == 0  # whole minutes
    deleted = await sf.client.deleted("Account", start, end)
    assert [rid for rid, _ in deleted.records] == [gone]
    assert deleted.records[0][1] >= start and deleted.earliest_available is not None
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id IN ('{kept}', '{gone}') ORDER BY Name"
    assert [r["Id"] for r in await sf.client.query_all(soql)] == [kept]
    every = await sf.client.query_all(soql, include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in every] == [(kept, False), (gone, True)]
