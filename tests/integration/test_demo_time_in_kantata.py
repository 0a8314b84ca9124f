"""`d2r demo month-end` records a DE01 deal's time where DE01 delivers: in Kantata (by the
firm's PSA routing), not in Certinia, where no project of that deal exists. The entries are
approved, by a DE01 consultant with the line's role, and the engagement's period close bills
them; re-running the demo writes nothing twice (Kantata has no idempotency keys)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.salesforce import SalesforceClient, SalesforceConfig
from connectors.salesforce.client import soql_quote
from tests.integration.conftest import Stack, eventually
from tests.integration.test_engagement_path import seed_info
from tests.integration.test_lifecycle_psas import AUDITOR, FINANCE, SALES, de_deal, kantata
from workers import demo_month_end as demo

pytestmark = pytest.mark.integration


async def in_delivery(stack: Stack, opportunity: str) -> dict[str, Any] | None:
    view: dict[str, Any] = (await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR, timeout=60)).json()
    return view if view.get("stage") == "IN_DELIVERY" else None


async def test_the_demo_records_a_de01_deals_time_in_kantata(stack: Stack) -> None:
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    said: list[tuple[str, str, str]] = []
    target = demo.Target(
        crm=stack.sims["salesforce"].url,
        kantata=stack.sims["kantata"].url,
        progress=lambda phase, subject, text: said.append((phase, subject, text)),
    )
    try:
        opportunity = await de_deal(stack, sf)  # 100 h of a Consultant at 165 EUR
        started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES)
        assert started.status_code == 202, started.text
        view = await eventually(lambda: in_delivery(stack, opportunity), within=90)
        workspace = view["project_id"]
        consultants = (await seed_info(stack))["consultants"]
        async with httpx.AsyncClient(timeout=60) as http:
            await demo.record_time(http, target, {opportunity: view}, "2026-12", consultants)
            await demo.record_time(http, target, {opportunity: view}, "2026-12", consultants)  # a re-run
        kt = await kantata(stack)
        try:
            rows = (await kt.get("/api/v1/time_entries", params={"workspace_id": workspace, "per_page": 200})).json()
            users = (await kt.get("/api/v1/users", params={"per_page": 200})).json()["users"]
        finally:
            await kt.aclose()
        entries = list(rows["time_entries"].values())
        # two weeks (7 and 14 December) of Monday 8 h, Tuesday 8 h, Wednesday 4 h, written once
        assert sorted((e["date_performed"], e["time_in_minutes"]) for e in entries) == [
            ("2026-12-07", 480), ("2026-12-08", 480), ("2026-12-09", 240),
            ("2026-12-14", 480), ("2026-12-15", 480), ("2026-12-16", 240),
        ]  # fmt: skip
        assert all(e["approved"] and e["billable"] for e in entries)
        assert {users[e["user_id"]]["full_name"] for e in entries} == {"Emmy Noether"}  # DE01, a Consultant
        # the re-run found both weeks and wrote neither again
        assert [text for phase, _, text in said if phase == "time" and "recorded before" in text] == [
            f"Emmy Noether: 20 h in the week of {monday} on {workspace} (Kantata, recorded before)"
            for monday in ("2026-12-07", "2026-12-14")
        ]
        # nothing went to Certinia for this deal's project
        cards = await sf.query_all(
            f"SELECT Id FROM pse__Timecard_Header__c WHERE pse__Project__c = {soql_quote(workspace)}"
        )
        assert cards == []
        # and the engagement's December run bills the 40 h from Kantata
        closed = await stack.api.post(
            f"/v1/engagements/{opportunity}/periods/2026-12/close", headers=FINANCE, timeout=120
        )
        assert closed.status_code == 200, closed.text
        assert Decimal(closed.json()["billed"]["amount"]) == 40 * Decimal(165)
    finally:
        await sf.aclose()
