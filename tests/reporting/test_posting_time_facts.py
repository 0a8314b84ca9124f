"""Posting pages write their time facts through the hub's loader (idempotent by source id)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from activities.posting import HubTimeFacts
from reporting.hub import ReportingHub
from tests.reporting import dataset


def _fact(entry: str, hours: str) -> dict[str, object]:
    return {
        "source_system": "certinia",
        "source_record_id": entry,
        "opportunity_id": "O1",
        "customer_id": "ACME",
        "project_id": "P1",
        "contract_id": "K1",
        "legal_entity": "US1",
        "currency": "USD",
        "consultant_id": "C1",
        "work_date": date(2026, 11, 2),
        "hours": Decimal(hours),
        "billable": True,
        "bill_amount": Decimal(hours) * 200,
        "cost_amount": Decimal(hours) * 100,
    }


async def test_posted_time_lands_in_the_hub_once(hub: ReportingHub) -> None:
    await hub.upsert_dimensions(dataset.LEGAL_ENTITIES)
    sink = HubTimeFacts(hub)
    facts = [_fact("a0T1:2026-11-02", "8"), _fact("a0T2:2026-11-02", "4")]
    consultants = [{"consultant_id": "C1", "name": "Ada", "home_legal_entity": "US1"}]
    assert await sink.write(facts, consultants) == 2
    assert await sink.write(facts, consultants) == 0  # a retried page writes nothing twice
    row = await hub.pool.fetchrow(
        "SELECT name, home_legal_entity, capacity_hours_per_day FROM dim_consultant WHERE consultant_id = 'C1'"
    )
    assert (row["name"], row["home_legal_entity"], row["capacity_hours_per_day"]) == ("Ada", "US1", Decimal(8))
    hours = await hub.pool.fetchval(
        "SELECT sum(hours) FROM fact_time WHERE source_record_id = ANY($1::text[])",
        ["a0T1:2026-11-02", "a0T2:2026-11-02"],
    )
    assert hours == Decimal(12)
