"""The same lifecycle on both PSAs, over the real protocols: a closed deal provisions a
project in its entity's PSA (UK01 on Certinia, DE01 — an acquired unit — on Kantata, the
CRM Salesforce for both), approved time is invoiced at the period close into the ERP, the
PSA's entries are marked billed exactly once, and a second close changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.netsuite import NetSuiteClient
from connectors.salesforce import SalesforceClient, SalesforceConfig
from connectors.salesforce.client import soql_quote
from contracts.feeds import EventPollInput, EventPollResult
from contracts.inbound import InboundResult
from contracts.posting import PostingInput, PostingResult
from contracts.queues import TaskQueues
from tests.integration.conftest import Stack, eventually
from tests.integration.test_engagement_path import seed_info
from tests.vendor_auth import netsuite_config
from workflows.event_poll import EventPollWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}
CREDS = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}
KT = "/api/v1"


@dataclass
class Delivered:
    hours: Decimal
    rate: Decimal
    entry_ids: list[str]


@dataclass
class Psa:
    """How a person works in one PSA, and how to read its billed marks."""

    name: str
    deal: Callable[[Stack, SalesforceClient], Awaitable[str]]  # a closed-won deal of the entity it delivers
    log_time: Callable[[Stack, SalesforceClient, dict[str, Any]], Awaitable[Delivered]]
    billed: Callable[[Stack, SalesforceClient, dict[str, Any]], Awaitable[list[bool]]]
    period: str


async def closed_deal(
    stack: Stack, sf: SalesforceClient, name: str, account: str, entity: str, currency: str, role: str, rate: int
) -> str:
    """A T&M deal closed in the CRM (100 h of `role` at `rate`), fresh for this test."""
    info = await seed_info(stack)
    opportunity = await sf.create(
        "Opportunity",
        {
            "Name": name,
            "AccountId": info["accounts"][account],
            "StageName": "Closed Won",
            "CloseDate": "2026-12-01",
            "CurrencyIsoCode": currency,
            "Type": "New Business",
            "D2R_Legal_Entity__c": entity,
            "D2R_Billing_Terms__c": "Net 30",
            "D2R_Service_Package__c": "ADVISORY-TM",
            "D2R_Contract_Start__c": "2026-12-01",
            "D2R_Contract_End__c": "2027-05-31",
        },
    )
    await sf.create(
        "OpportunityLineItem",
        {
            "OpportunityId": opportunity,
            "Product2Id": info["products"]["CONS-TM"],
            "Quantity": 100,
            "UnitPrice": rate,
            "D2R_Billing_Model__c": "time_and_materials",
            "D2R_Revenue_Method__c": "as_delivered",
            "D2R_Role__c": role,
            "D2R_Hours__c": 100,
        },
    )
    return opportunity


# ---- Certinia (UK01) ------------------------------------------------------------------


async def uk_deal(stack: Stack, sf: SalesforceClient) -> str:
    return await closed_deal(
        stack, sf, "Globex UK - advisory", "Globex UK Ltd", "UK01", "GBP", "Senior Consultant", rate=200
    )


async def certinia_time(stack: Stack, sf: SalesforceClient, engagement: dict[str, Any]) -> Delivered:
    alan = next(c for c in (await seed_info(stack))["consultants"] if c["name"] == "Alan Turing")
    line = (
        await sf.query_all(
            f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = {soql_quote(engagement['opportunity_id'])}"
        )
    )[0]
    card = await sf.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": engagement["project_id"],
            "pse__Resource__c": alan["id"],
            "pse__Start_Date__c": "2026-12-07",
            "pse__End_Date__c": "2026-12-13",
            "pse__Total_Hours__c": 12.5,
            "pse__Status__c": "Approved",
            "pse__Approved__c": True,
            "pse__Billable__c": True,
            "D2R_Contract_Line_Id__c": line["Id"],
        },
    )
    return Delivered(Decimal("12.5"), Decimal(200), [card])  # the deal's rate for a Senior Consultant


async def certinia_billed(stack: Stack, sf: SalesforceClient, engagement: dict[str, Any]) -> list[bool]:
    rows = await sf.query_all(
        "SELECT Id, pse__Billed__c FROM pse__Timecard_Header__c "
        f"WHERE pse__Project__c = {soql_quote(engagement['project_id'])}"
    )
    return [bool(r["pse__Billed__c"]) for r in rows]


# ---- Kantata (DE01) -------------------------------------------------------------------


async def kantata(stack: Stack) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=stack.sims["kantata"].url)
    token = (await http.post("/oauth/token", data=CREDS)).json()["access_token"]
    http.headers["authorization"] = f"Bearer {token}"
    return http


async def de_deal(stack: Stack, sf: SalesforceClient) -> str:
    return await closed_deal(
        stack, sf, "Initech GmbH - advisory", "Initech GmbH", "DE01", "EUR", "Consultant", rate=165
    )


async def kantata_time(stack: Stack, sf: SalesforceClient, engagement: dict[str, Any]) -> Delivered:
    http = await kantata(stack)
    try:
        users = (await http.get(f"{KT}/users", params={"per_page": 50})).json()["users"]
        emmy = next(u["id"] for u in users.values() if u["full_name"] == "Emmy Noether")  # Consultant, DE01
        ids = []
        for day, minutes in (("2026-12-07", 450), ("2026-12-08", 300)):
            r = await http.post(
                f"{KT}/time_entries",
                json={"time_entry": {"workspace_id": engagement["project_id"], "user_id": emmy,
                                     "date_performed": day, "time_in_minutes": minutes}},
            )  # fmt: skip
            assert r.status_code == 200, r.text
            entry = r.json()["results"][0]["id"]
            approved = await http.put(f"{KT}/time_entries/{entry}", json={"time_entry": {"approved": True}})
            assert approved.status_code == 200, approved.text
            ids.append(entry)
        return Delivered(Decimal("12.5"), Decimal(165), ids)
    finally:
        await http.aclose()


async def kantata_billed(stack: Stack, sf: SalesforceClient, engagement: dict[str, Any]) -> list[bool]:
    http = await kantata(stack)
    try:
        rows = (await http.get(f"{KT}/time_entries", params={"workspace_id": engagement["project_id"]})).json()
        return [bool(t["is_invoiced"]) for t in rows["time_entries"].values()]
    finally:
        await http.aclose()


PSAS = [
    Psa("certinia", uk_deal, certinia_time, certinia_billed, "2026-12"),
    Psa("kantata", de_deal, kantata_time, kantata_billed, "2026-12"),
]


async def view(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    # the API asks Temporal; on a loaded machine that can take longer than httpx's 5 s default
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("psa", PSAS, ids=[p.name for p in PSAS])
async def test_a_deal_is_provisioned_delivered_and_billed_once_in_its_psa(stack: Stack, psa: Psa) -> None:
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    ns = NetSuiteClient(netsuite_config(stack.sims["netsuite"].url))
    try:
        opportunity = await psa.deal(stack, sf)
        started = await stack.api.post(
            "/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES, timeout=60
        )
        assert started.status_code in (200, 202), started.text

        async def in_delivery() -> dict[str, Any] | None:
            v = await view(stack, opportunity)
            return v if v["stage"] == "IN_DELIVERY" else None

        engagement = await eventually(in_delivery, within=60)
        engagement["opportunity_id"] = opportunity
        # the CRM knows the project, whichever PSA holds it
        crm = await sf.query_all(
            f"SELECT pse__Primary_Project__c, D2R_Project_Id__c FROM Opportunity WHERE Id = {soql_quote(opportunity)}"
        )
        assert crm[0]["D2R_Project_Id__c"] == engagement["project_id"]
        assert engagement["project_id"].isdigit() is (psa.name == "kantata")

        delivered = await psa.log_time(stack, sf, engagement)
        closed = await stack.api.post(
            f"/v1/engagements/{opportunity}/periods/{psa.period}/close", headers=FINANCE, timeout=120
        )
        assert closed.status_code == 200, closed.text
        result = closed.json()
        assert Decimal(result["billed"]["amount"]) == delivered.hours * delivered.rate
        [invoice] = result["invoices"]
        record = await ns.get_by_external_id("invoice", invoice["invoice_id"])
        assert record is not None and Decimal(str(record["total"])) == Decimal(invoice["total"]["amount"])

        async def marked() -> bool:
            flags = await psa.billed(stack, sf, engagement)
            return bool(flags) and all(flags)

        assert await eventually(marked)
        again = await stack.api.post(
            f"/v1/engagements/{opportunity}/periods/{psa.period}/close", headers=FINANCE, timeout=120
        )
        assert again.json()["invoices"] == result["invoices"]
        if psa.name == "kantata":
            async with httpx.AsyncClient(base_url=stack.sims["kantata"].url) as admin:
                assert (await admin.get("/__admin/duplicates")).json()["count"] == 0
                invoices = (await admin.get("/__admin/records/invoices")).json()["records"]
            # marked invoiced exactly once: one Kantata invoice holding exactly the delivered entries
            mine = [i for i in invoices if i["workspace_id"] == engagement["project_id"]]
            assert [sorted(i["time_entry_ids"]) for i in mine] == [sorted(delivered.entry_ids)]
    finally:
        await sf.aclose()
        await ns.aclose()


async def test_a_kantata_milestone_reaches_its_engagement_through_the_poller(stack: Stack) -> None:
    """Kantata sends no webhooks: the Schedule's poll turns its completed milestone into the
    webhooks' inbound event; polled again (Kantata repeats events), nothing happens twice."""
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    http = await kantata(stack)
    try:
        info = await seed_info(stack)
        opportunity = await sf.create(
            "Opportunity",
            {
                "Name": "Initech GmbH - rollout (Kantata)",
                "AccountId": info["accounts"]["Initech GmbH"],
                "StageName": "Closed Won",
                "CloseDate": "2026-12-01",
                "CurrencyIsoCode": "EUR",
                "D2R_Legal_Entity__c": "DE01",
                "D2R_Billing_Terms__c": "Net 30",
                "D2R_Service_Package__c": "IMPL-STD",
                "D2R_Contract_Start__c": "2026-12-01",
                "D2R_Contract_End__c": "2027-05-31",
            },
        )
        await sf.create(
            "OpportunityLineItem",
            {
                "OpportunityId": opportunity,
                "Product2Id": info["products"]["IMPL-FF"],
                "Quantity": 1,
                "UnitPrice": 90000,
                "D2R_Billing_Model__c": "fixed_fee",
                "D2R_Revenue_Method__c": "cost_to_cost",
            },
        )
        started = await stack.api.post(
            "/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES, timeout=60
        )
        assert started.status_code in (200, 202), started.text

        async def in_delivery() -> dict[str, Any] | None:
            v = await view(stack, opportunity)
            return v if v["stage"] == "IN_DELIVERY" else None

        engagement = await eventually(in_delivery, within=60)
        stories = (
            await http.get(
                f"{KT}/stories", params={"workspace_id": engagement["project_id"], "story_type": "milestone"}
            )
        ).json()
        first = stories["results"][0]["id"]
        done = await http.put(
            f"{KT}/stories/{first}", json={"story": {"state": "completed", "completed_at": "2026-12-10"}}
        )
        assert done.status_code == 200, done.text

        queues = TaskQueues(crm=stack.settings.crm_task_queue, psa=stack.settings.psa_task_queue,
                            erp=stack.settings.erp_task_queue)  # fmt: skip
        polls = []
        for n in range(2):
            polls.append(
                await stack.client.execute_workflow(
                    EventPollWorkflow.run,
                    EventPollInput(source="kantata", queues=queues),
                    id=f"poll-events-kantata-it-{opportunity}-{n}",
                    task_queue=stack.settings.workflow_task_queue,
                    result_type=EventPollResult,
                )
            )
        fact = f"webhook-kantata-kantata:story:{first}:completed:2026-12-10"
        assert fact in polls[0].started
        assert fact not in polls[1].started and polls[1].duplicates >= 1
        routed = await stack.client.get_workflow_handle(fact, result_type=InboundResult).result()
        assert routed.routed_to == [f"engagement-{opportunity}"]

        async def noted() -> list[str] | None:
            notes = [t["note"] for t in (await view(stack, opportunity))["timeline"]]
            found = [n for n in notes if f"milestone {first} completed on 2026-12-10" in n]
            return found or None

        assert len(await eventually(noted)) == 1
    finally:
        await sf.aclose()
        await http.aclose()


async def test_kantata_time_is_posted_to_the_erp_once(stack: Stack) -> None:
    """The daily posting run of DE01 reads the approved Kantata time of the entity's
    workspaces, posts it to the ERP as time bills and marks it posted in Kantata; a second
    run posts nothing again."""
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    http = await kantata(stack)
    try:
        opportunity = await de_deal(stack, sf)
        started = await stack.api.post(
            "/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES, timeout=60
        )
        assert started.status_code in (200, 202), started.text

        async def in_delivery() -> dict[str, Any] | None:
            v = await view(stack, opportunity)
            return v if v["stage"] == "IN_DELIVERY" else None

        engagement = await eventually(in_delivery, within=60)
        delivered = await kantata_time(stack, sf, engagement)
        queues = TaskQueues(crm=stack.settings.crm_task_queue, psa=stack.settings.psa_task_queue,
                            erp=stack.settings.erp_task_queue)  # fmt: skip
        results = []
        for n in range(2):
            results.append(
                await stack.client.execute_workflow(
                    TimeAndExpensePostingWorkflow.run,
                    PostingInput(legal_entity="DE01", posting_date=date(2026, 12, 31), queues=queues),
                    id=f"posting-DE01-2026-12-31-it-{opportunity}-{n}",
                    task_queue=stack.settings.workflow_task_queue,
                    result_type=PostingResult,
                )
            )
        async with httpx.AsyncClient(base_url=stack.sims["netsuite"].url) as admin:
            bills = (await admin.get("/__admin/records/timeBill", params={"limit": 100000})).json()["records"]
        mine = [b for b in bills if b.get("custcol_d2r_project_id") == engagement["project_id"]]
        assert len(mine) == len(delivered.entry_ids) == 2  # each Kantata entry once
        assert sum(Decimal(str(b["hours"])) for b in mine) == delivered.hours
        posted = (
            await http.get(
                f"{KT}/custom_field_values",
                params={"subject_type": "TimeEntry", "subject_id": ",".join(delivered.entry_ids)},
            )
        ).json()["custom_field_values"]
        assert sorted(v["subject_id"] for v in posted.values() if v["value"] == "true") == sorted(delivered.entry_ids)
        assert results[1].progress.time_entries == 0  # the second run finds nothing left to post
    finally:
        await sf.aclose()
        await http.aclose()


async def test_kantata_time_is_billed_by_the_entitys_month_end(stack: Stack) -> None:
    """DE01's month-end close (the batched path: every engagement's delivery read from the
    PSA in bulk) invoices the Kantata engagement's approved time in the ERP and marks those
    entries invoiced in Kantata, exactly once; the close then waits for a second person's
    approval before locking the period (four eyes), which this test leaves pending."""
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        opportunity = await de_deal(stack, sf)
        started = await stack.api.post(
            "/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES, timeout=60
        )
        assert started.status_code in (200, 202), started.text

        async def in_delivery() -> dict[str, Any] | None:
            v = await view(stack, opportunity)
            return v if v["stage"] == "IN_DELIVERY" else None

        engagement = await eventually(in_delivery, within=60)
        delivered = await kantata_time(stack, sf, engagement)
        close = await stack.api.post(
            "/v1/period-close", json={"legal_entity": "DE01", "period": "2026-12"}, headers=FINANCE, timeout=60
        )
        assert close.status_code in (200, 201), close.text

        async def awaiting() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await stack.api.get("/v1/period-close/DE01/2026-12", headers=FINANCE, timeout=60)
            ).json()
            return body if body.get("step") == "AWAITING_APPROVAL" else None

        report = await eventually(awaiting, within=180)
        assert report["engagements_failed"] == 0 and report["engagements_batched"] >= 1, report
        # the engagement's own view after its first close (the report's lines live in a hub; this stack has none)
        closed = await view(stack, opportunity)
        assert closed["periods_closed"] == ["2026-12"], closed
        assert Decimal(closed["amounts"]["billed"]["amount"]) == delivered.hours * delivered.rate  # 12.5 h x EUR 165
        assert await eventually(lambda: _all_invoiced(stack, engagement["project_id"]))
        async with httpx.AsyncClient(base_url=stack.sims["kantata"].url) as admin:
            invoices = (await admin.get("/__admin/records/invoices")).json()["records"]
        mine = [i for i in invoices if i["workspace_id"] == engagement["project_id"]]
        assert [sorted(i["time_entry_ids"]) for i in mine] == [sorted(delivered.entry_ids)]  # invoiced once
    finally:
        await sf.aclose()


async def _all_invoiced(stack: Stack, workspace: str) -> bool:
    http = await kantata(stack)
    try:
        rows = (await http.get(f"{KT}/time_entries", params={"workspace_id": workspace})).json()["time_entries"]
        return bool(rows) and all(t["is_invoiced"] for t in rows.values())
    finally:
        await http.aclose()
