"""Both currencies agree everywhere when the ERP's rate is not the reference file's, through
the running system: the Salesforce/Certinia and NetSuite simulators as processes, the
embedded PostgreSQL hub, a Temporal dev server, the real workers and the API over HTTP.

Figures (hand-computed). The reference file says 1 USD = 150 JPY. NetSuite gets a
currency-rate record for 2 Nov 2026: 1 JPY = 0.0064 USD (156.25 JPY per USD), and the daily
FX sync brings it into the hub. A JP01 T&M deal sells a Senior Consultant at 34,000 JPY/h;
10 approved hours in November are billed at the November close:
- net 10 x 34,000 = JPY 340,000; consumption tax 10 % = 34,000; invoice total JPY 374,000
  (JP01's functional currency is JPY: the ERP books 374,000);
- in USD at the hub's rate for 30 Nov (0.0064): invoice 374,000 x 0.0064 = USD 2,393.60, net
  340,000 x 0.0064 = 2,176.00; revenue (T&M as delivered) 340,000 x 0.0064 = USD 2,176.00.
  At the reference rate they would be 2,493.33 and 2,266.67: the engagement view once showed
  those while the hub showed the ERP's.
The engagement view, the hub's facts and the ERP invoice must show exactly these, and the PSA
project and the CRM opportunity the net billed JPY 340,000.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from connectors.netsuite.client import NetSuiteClient
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from contracts import search_attributes as sa
from contracts.fx import FxSyncInput, fx_sync_workflow_id
from contracts.queues import TaskQueues
from reporting.embedded import start_embedded_postgres, stop_embedded_postgres
from reporting.migrate import migrate_async
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.integration.conftest import Simulator, eventually, free_port, start_simulator
from tests.vendor_auth import netsuite_config
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings
from workflows.fx_sync import FxSyncWorkflow

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}


@dataclass
class FxStack:
    client: Client
    api: httpx.AsyncClient
    sims: dict[str, Simulator]
    dsn: str
    queues: dict[str, str]


@contextmanager
def simulators(base: Path) -> Iterator[dict[str, Simulator]]:
    out = {
        name: start_simulator(f"simulators.{name}", base / f"{name}.sqlite", base / f"{name}.log")
        for name in ("salesforce", "netsuite")
    }
    try:
        yield out
    finally:
        for sim in out.values():
            sim.process.terminate()
            sim.process.wait(timeout=10)


@pytest.fixture(scope="module")
async def fx_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FxStack]:
    pg_base = Path(tempfile.mkdtemp(prefix="d2r-fx-pg-"))
    with simulators(tmp_path_factory.mktemp("fx-agreement")) as sims:
        start_embedded_postgres(pg_base / "pg", database="postgres")
        dsn = f"postgresql://postgres:@/postgres?host={pg_base / 'pg'}"
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=wheel_binary("temporal"),
            search_attributes=sa.ALL,
            data_converter=TEST_CONVERTER,
            dev_server_log_level="error",
        )
        try:
            await migrate_async(dsn)
            tag = uuid.uuid4().hex[:6]
            queues = {f"{q}_task_queue": f"fx-{q}-{tag}" for q in ("workflow", "crm", "psa", "erp", "reporting")}
            settings = WorkerSettings(
                **queues,
                salesforce=VendorEndpoint(url=sims["salesforce"].url),
                erp_instances={"default": VendorEndpoint(url=sims["netsuite"].url)},
                hub_database_url=dsn,
            )
            port = free_port()
            async with AsyncExitStack() as exits:
                acts = await build_activities(settings, exits, temporal.client)
                await start_workers(temporal.client, settings, activities_by_role(acts), exits)
                app = create_app(
                    ApiSettings(
                        **queues,
                        salesforce=VendorEndpoint(url=sims["salesforce"].url),
                        database_url=dsn,
                        static_tokens=True,
                    ),
                    temporal=temporal.client,
                )
                server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
                serving = asyncio.create_task(server.serve())
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                    await asyncio.sleep(0.05)
                http = await exits.enter_async_context(
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
                )
                try:
                    yield FxStack(temporal.client, http, sims, dsn, queues)
                finally:
                    server.should_exit = True
                    await serving
        finally:
            await temporal.shutdown()
            stop_embedded_postgres(pg_base / "pg", discard=True)
            shutil.rmtree(pg_base, ignore_errors=True)


def money(value: dict[str, str]) -> tuple[D, str]:
    return D(value["amount"]), value["currency"]


async def _erp_rate_and_sync(stack: FxStack) -> None:
    """NetSuite's rate record for 2 Nov (1 JPY = 0.0064 USD), then the daily sync into the hub."""
    ns = NetSuiteClient(netsuite_config(stack.sims["netsuite"].url))
    try:
        usd = await ns.get_by_external_id("currency", "USD") or {}
        jpy = await ns.get_by_external_id("currency", "JPY") or {}
        await ns.create(
            "currencyRate",
            {
                "baseCurrency": {"id": usd["id"]},
                "transactionCurrency": {"id": jpy["id"]},
                "exchangeRate": 0.0064,
                "effectiveDate": "2026-11-02",
            },
        )
    finally:
        await ns.aclose()
    q = stack.queues
    await stack.client.execute_workflow(
        FxSyncWorkflow.run,
        FxSyncInput(queues=TaskQueues(crm=q["crm_task_queue"], psa=q["psa_task_queue"], erp=q["erp_task_queue"])),
        id=f"{fx_sync_workflow_id('2026-11-30')}-{uuid.uuid4().hex[:6]}",
        task_queue=q["workflow_task_queue"],
    )


async def _jp01_deal(sf: SalesforceClient, seed: dict[str, Any]) -> tuple[str, str]:
    account = (await sf.get("Opportunity", seed["opportunities"]["valid"]["jp01_milestone"]))["AccountId"]
    opportunity = await sf.create(
        "Opportunity",
        {
            "Name": "Umbrella Pharma - advisory T&M (JPY)",
            "AccountId": account,
            "StageName": "Negotiation/Review",
            "CloseDate": "2026-11-02",
            "CurrencyIsoCode": "JPY",
            "D2R_Legal_Entity__c": "JP01",
            "D2R_Billing_Terms__c": "Net 30",
            "D2R_Service_Package__c": "ADVISORY-TM",
            "D2R_Contract_Start__c": "2026-11-01",
            "D2R_Contract_End__c": "2027-04-30",
            "Amount": 0,
        },
    )
    line = await sf.create(
        "OpportunityLineItem",
        {
            "OpportunityId": opportunity,
            "Product2Id": seed["products"]["CONS-TM"],
            "Quantity": 100,
            "UnitPrice": 34000,
            "D2R_Billing_Model__c": "time_and_materials",
            "D2R_Revenue_Method__c": "as_delivered",
            "D2R_Role__c": "Senior Consultant",
            "D2R_Hours__c": 100,
        },
    )
    await sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    return opportunity, line


async def test_view_hub_and_erp_agree_in_both_currencies_at_the_erps_rate(fx_stack: FxStack) -> None:
    stack = fx_stack
    await _erp_rate_and_sync(stack)
    rates = await stack.api.get(
        "/v1/fx-rates", params={"from": "JPY", "to": "USD", "on": "2026-11-30"}, headers=FINANCE
    )
    [in_force] = rates.json()["rates"]
    assert (in_force["rate"], in_force["rate_date"], in_force["source_system"]) == (
        "0.0064",
        "2026-11-02",
        "netsuite:default",
    )

    async with httpx.AsyncClient(base_url=stack.sims["salesforce"].url) as http:
        seed = (await http.get("/__admin/seed-info")).raise_for_status().json()
    yukihiro = next(c for c in seed["consultants"] if c["name"] == "Yukihiro Matsumoto")
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        opportunity, line = await _jp01_deal(sf, seed)
        started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES)
        assert started.status_code in (200, 202), started.text

        async def in_delivery() -> dict[str, Any] | None:
            r = await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)
            return r.json() if r.status_code == 200 and r.json()["stage"] == "IN_DELIVERY" else None

        engagement = await eventually(in_delivery, within=120)
        await sf.create(
            "pse__Timecard_Header__c",
            {
                "pse__Project__c": engagement["project_id"],
                "pse__Resource__c": yukihiro["id"],
                "pse__Start_Date__c": "2026-11-16",
                "pse__End_Date__c": "2026-11-22",
                "pse__Total_Hours__c": 10,
                "pse__Status__c": "Approved",
                "pse__Approved__c": True,
                "pse__Billable__c": True,
                "D2R_Contract_Line_Id__c": line,
            },
        )
    finally:
        await sf.aclose()
    closed = await stack.api.post(f"/v1/engagements/{opportunity}/periods/2026-11/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    [summary] = closed.json()["invoices"]

    # The engagement view: the contract's (= functional) currency and the reporting currency.
    view = (await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)).json()
    [invoice] = view["invoices"]
    assert money(invoice["total"]) == (D("374000"), "JPY")
    assert invoice["functional"] is None  # JP01 books in JPY, the contract's currency
    assert money(invoice["reporting"]) == (D("2393.60"), "USD")
    [november] = view["revenue"]
    assert november["period"] == "2026-11" and money(november["amount"]) == (D("340000"), "JPY")
    assert money(november["reporting"]) == (D("2176.00"), "USD")

    # The ERP books the invoice in JP01's functional currency.
    ns = NetSuiteClient(netsuite_config(stack.sims["netsuite"].url))
    try:
        record = await ns.get_by_external_id("invoice", invoice["invoice_id"])
    finally:
        await ns.aclose()
    assert record is not None and str(record["id"]) == summary["erp_invoice_id"]
    assert D(str(record["total"])) == D("374000")

    # The PSA and the CRM show the billing in the contract's currency: net billed JPY 340,000.
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:

        async def fed_back() -> tuple[dict[str, Any], dict[str, Any]] | None:
            project = await sf.get("pse__Proj__c", engagement["project_id"])
            deal = await sf.get("Opportunity", opportunity)
            done = project.get("pse__Billings__c") is not None and deal.get("D2R_Billed_Amount__c") is not None
            return (project, deal) if done else None

        project, deal = await eventually(fed_back, within=60)
    finally:
        await sf.aclose()
    assert D(str(project["pse__Billings__c"])) == D("340000") == D(view["amounts"]["net_billed"]["amount"])
    assert D(str(deal["D2R_Billed_Amount__c"])) == D("340000")

    # The hub: the same figures in both currencies, at the same rate of the same day.
    conn = await asyncpg.connect(stack.dsn)
    try:

        async def hub_invoice() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT functional_total_amount, functional_net_amount, reporting_total_amount, "
                "reporting_net_amount, fx_rate_reporting, fx_date FROM fact_invoice WHERE source_record_id = $1",
                invoice["invoice_id"],
            )

        row = await eventually(hub_invoice, within=60)
        assert (row["functional_total_amount"], row["functional_net_amount"]) == (D("374000"), D("340000"))
        assert (row["reporting_total_amount"], row["reporting_net_amount"]) == (D("2393.60"), D("2176.00"))
        assert row["fx_rate_reporting"] == D("0.0064")

        async def hub_revenue() -> asyncpg.Record | None:
            found = await conn.fetchrow(
                "SELECT sum(functional_amount) AS functional, sum(reporting_amount) AS reporting, count(*) AS n "
                "FROM fact_revenue WHERE opportunity_id = $1 AND revenue_date BETWEEN '2026-11-01' AND '2026-11-30'",
                opportunity,
            )
            return found if found and found["n"] else None

        revenue = await eventually(hub_revenue, within=60)
        assert (revenue["functional"], revenue["reporting"]) == (D("340000"), D("2176.00"))
    finally:
        await conn.close()


async def bookings_by_period(stack: FxStack, opportunity: str) -> dict[str, D]:
    """The deal's booking facts per month, in the reporting currency (the hub's own rows)."""
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(
            "SELECT to_char(booking_date, 'YYYY-MM') AS period, sum(reporting_amount) AS usd FROM fact_booking "
            "WHERE opportunity_id = $1 GROUP BY 1 ORDER BY 1",
            opportunity,
        )
    finally:
        await conn.close()
    return {r["period"]: r["usd"] for r in rows}


async def _timecard(stack: FxStack, project: str, line: str, monday: str, sunday: str) -> None:
    """10 approved hours of Yukihiro (Senior Consultant, JP01) in that week."""
    async with httpx.AsyncClient(base_url=stack.sims["salesforce"].url) as http:
        seed = (await http.get("/__admin/seed-info")).raise_for_status().json()
    yukihiro = next(c for c in seed["consultants"] if c["name"] == "Yukihiro Matsumoto")
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        await sf.create(
            "pse__Timecard_Header__c",
            {
                "pse__Project__c": project,
                "pse__Resource__c": yukihiro["id"],
                "pse__Start_Date__c": monday,
                "pse__End_Date__c": sunday,
                "pse__Total_Hours__c": 10,
                "pse__Status__c": "Approved",
                "pse__Approved__c": True,
                "pse__Billable__c": True,
                "D2R_Contract_Line_Id__c": line,
            },
        )
    finally:
        await sf.aclose()


async def test_a_change_order_books_in_its_own_month_and_november_never_changes(fx_stack: FxStack) -> None:
    """Item 3 through the running system. The JP01 deal books 100 h x 34,000 = JPY 3,400,000 on
    2 Nov: USD 21,760.00 at 0.0064 (the hub gets it with November's invoice). A change order
    effective 10 Dec raises the line to JPY 4,080,000: its own booking of +680,000 in December
    (USD 4,352.00, with December's invoice); November's booking stays 21,760.00, and the
    backlog the API reports for November does not move."""
    stack = fx_stack
    await _erp_rate_and_sync(stack)
    async with httpx.AsyncClient(base_url=stack.sims["salesforce"].url) as http:
        seed = (await http.get("/__admin/seed-info")).raise_for_status().json()
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        opportunity, line = await _jp01_deal(sf, seed)
    finally:
        await sf.aclose()
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES)
    assert started.status_code in (200, 202), started.text

    async def in_delivery() -> dict[str, Any] | None:
        r = await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)
        return r.json() if r.status_code == 200 and r.json()["stage"] == "IN_DELIVERY" else None

    engagement = await eventually(in_delivery, within=120)
    await _timecard(stack, engagement["project_id"], line, "2026-11-16", "2026-11-22")
    closed = await stack.api.post(f"/v1/engagements/{opportunity}/periods/2026-11/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text

    async def booked(months: int) -> dict[str, D] | None:
        found = await bookings_by_period(stack, opportunity)
        return found if len(found) == months else None

    assert await eventually(lambda: booked(1), within=60) == {"2026-11": D("21760.00")}

    async def report(kpi: str) -> dict[str, D]:
        r = await stack.api.get(
            f"/v1/reports/{kpi}",
            headers=FINANCE,
            params={"group_by": "period", "period_from": "2026-11", "period_to": "2026-12", "legal_entity": "JP01"},
        )
        assert r.status_code == 200, r.text
        return {row["key"]: D(str(row["value"])) for row in r.json()["rows"]}

    november_backlog = (await report("backlog")).get("2026-11")
    assert november_backlog is not None

    requested = await stack.api.post(
        f"/v1/engagements/{opportunity}/amendments",
        headers=SALES,
        json={
            "amendment": {
                "amendment_id": f"AM-CO-{opportunity}",
                "effective_date": "2026-12-10",
                "treatment": "prospective",
                "reason": "twenty more hours",
                "changes": [{"contract_line_id": line, "price": {"amount": "4080000", "currency": "JPY"}}],
            }
        },
    )
    assert requested.status_code == 202, requested.text
    view = (await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)).json()
    tokens = {"delivery_ops": {"Authorization": "Bearer dev-delivery-ops"}, "finance": FINANCE}
    approvals = {a["approval_id"]: a for a in view["approvals"]}
    for approval_id in requested.json()["approval_ids"]:
        token = tokens[approvals[approval_id]["approver_roles"][0]]
        decided = await stack.api.post(
            f"/v1/engagements/{opportunity}/approvals/{approval_id}", json={"decision": "approve"}, headers=token
        )
        assert decided.status_code == 200, decided.text

    async def applied() -> dict[str, Any] | None:
        v = (await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)).json()
        return v if [c["status"] for c in v["changes"]] == ["applied"] else None

    await eventually(applied, within=60)
    await _timecard(stack, engagement["project_id"], line, "2026-12-14", "2026-12-20")
    closed = await stack.api.post(f"/v1/engagements/{opportunity}/periods/2026-12/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    assert await eventually(lambda: booked(2), within=60) == {"2026-11": D("21760.00"), "2026-12": D("4352.00")}
    assert (await report("backlog")).get("2026-11") == november_backlog
