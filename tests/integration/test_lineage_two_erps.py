"""Lineage through the running system, on either ERP: the Salesforce/Certinia, NetSuite and
D365 simulators as processes, the embedded PostgreSQL hub, a Temporal dev server, the real
workers (workers.composition) and the API over HTTP.

The UK01 T&M deal is provisioned, a consultant's approved week is posted as a batch journal
(POST /v1/postings, journal mode), the period is closed through the API (an invoice and a
revenue journal in the ERP), and then the ERP's own invoice id leads, through
GET /v1/lineage, back to the opportunity and forward to the journals — with UK01 booking in
NetSuite, then (by routing configuration) in Dynamics 365."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from connectors.salesforce.client import SalesforceClient, SalesforceConfig, soql_quote
from contracts import search_attributes as sa
from reporting.embedded import start_embedded_postgres, stop_embedded_postgres
from reporting.migrate import migrate_async
from simulators.dynamics import DynamicsSettings
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.integration.conftest import Simulator, eventually, free_port, start_simulator
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings

pytestmark = pytest.mark.integration

UK_TM = "006Dd0000000002IAA"  # seeded: UK01, GBP, T&M
ALAN = "003Dd0000000003IAA"  # seeded consultant: Senior Consultant, UK01
SALES = {"Authorization": "Bearer dev-sales-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}


@dataclass
class LineageStack:
    erp: str  # where UK01 books: "netsuite" or "dynamics"
    instance: str  # the ERP instance serving UK01
    client: Client
    api: httpx.AsyncClient
    salesforce_url: str


@contextmanager
def simulators(base: Path) -> Iterator[dict[str, Simulator]]:
    out = {
        name: start_simulator(f"simulators.{name}", base / f"{name}.sqlite", base / f"{name}.log")
        for name in ("salesforce", "netsuite", "dynamics")
    }
    try:
        yield out
    finally:
        for sim in out.values():
            sim.process.terminate()
            sim.process.wait(timeout=10)


@pytest.fixture(scope="module", params=["netsuite", "dynamics"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LineageStack]:
    """Each ERP run is a stack of its own (simulators, hub, Temporal server): the same deal runs
    in both."""
    erp: str = request.param
    pg_base = Path(tempfile.mkdtemp(prefix="d2r-lineage-pg-"))
    with simulators(tmp_path_factory.mktemp(f"lineage-{erp}")) as sims:
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
            queues = {f"{q}_task_queue": f"ln-{q}-{tag}" for q in ("workflow", "crm", "psa", "erp", "reporting")}
            settings = WorkerSettings(
                **queues,
                salesforce=VendorEndpoint(url=sims["salesforce"].url),
                erp_instances={
                    "default": VendorEndpoint(url=sims["netsuite"].url),
                    "d365": VendorEndpoint(
                        url=sims["dynamics"].url, vendor="dynamics", options={"tenant": DynamicsSettings().tenant}
                    ),
                },
                erp_routing={"UK01": "d365"} if erp == "dynamics" else {},
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
                    yield LineageStack(
                        erp, "d365" if erp == "dynamics" else "default", temporal.client, http, sims["salesforce"].url
                    )
                finally:
                    server.should_exit = True
                    await serving
        finally:
            await temporal.shutdown()
            stop_embedded_postgres(pg_base / "pg", discard=True)
            shutil.rmtree(pg_base, ignore_errors=True)


async def delivered_and_closed(stack: LineageStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Provision the deal (once per stack), post a week of time, close October."""
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": UK_TM}, headers=SALES)
    assert started.status_code in (200, 201, 202), started.text

    async def in_delivery() -> dict[str, Any] | None:
        response = await stack.api.get(f"/v1/engagements/{UK_TM}", headers=AUDITOR)
        if response.status_code != 200:  # started, not answering yet
            return None
        v: dict[str, Any] = response.json()
        return v if v["stage"] == "IN_DELIVERY" else None

    engagement = await eventually(in_delivery, within=120)
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.salesforce_url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        existing = await sf.query_all(
            f"SELECT Id FROM pse__Timecard_Header__c WHERE pse__Project__c = {soql_quote(engagement['project_id'])}"
        )
        if not existing:
            [line] = await sf.query_all(f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = {soql_quote(UK_TM)}")
            await sf.create(
                "pse__Timecard_Header__c",
                {
                    "pse__Project__c": engagement["project_id"],
                    "pse__Resource__c": ALAN,
                    "pse__Start_Date__c": "2026-10-05",
                    "pse__End_Date__c": "2026-10-11",
                    "pse__Total_Hours__c": 12.5,
                    "pse__Status__c": "Approved",
                    "pse__Approved__c": True,
                    "pse__Billable__c": True,
                    "D2R_Contract_Line_Id__c": line["Id"],
                },
            )
    finally:
        await sf.aclose()
    posting = await stack.api.post(
        "/v1/postings",
        json={"legal_entity": "UK01", "posting_date": "2026-10-31", "time_mode": "journal"},
        headers=FINANCE,
    )
    assert posting.status_code == 202, posting.text
    await stack.client.get_workflow_handle(posting.json()["workflow_id"]).result()
    closed = await stack.api.post(f"/v1/engagements/{UK_TM}/periods/2026-10/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    return engagement, closed.json()


async def test_an_erp_invoice_id_leads_back_to_the_deal_and_forward_to_the_journals(stack: LineageStack) -> None:
    engagement, october = await delivered_and_closed(stack)
    [invoice] = october["invoices"]
    erp_invoice = invoice["erp_invoice_id"]
    assert erp_invoice and october["revenue_journal_id"]

    async def chain() -> dict[str, Any] | None:
        response = await stack.api.get(f"/v1/lineage/{erp_invoice}", headers=FINANCE)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        kinds = {r["record_type"] for r in body["chain"]}
        return body if {"opportunity", "invoice", "journal"} <= kinds else None

    body = await eventually(chain, within=60)
    [matched] = body["matched"]
    assert (matched["system"], matched["record_type"], matched["id"]) == ("erp", "invoice", erp_invoice)
    assert matched["external_id"] == invoice["invoice_id"] and matched["instance"] == stack.instance
    assert matched["workflow_id"] == f"engagement-{UK_TM}"
    assert body["opportunities"] == [UK_TM]
    records = {(r["system"], r["record_type"], r["id"]): r for r in body["chain"]}
    # back to the deal: opportunity (CRM), PSA project, ERP customer and sales order, one workflow
    assert ("crm", "opportunity", UK_TM) in records
    assert ("psa", "project", engagement["project_id"]) in records
    assert ("erp", "sales_order", engagement["contract_id"]) in records
    assert ("erp", "customer", engagement["erp_customer_id"]) in records
    assert records["psa", "project", engagement["project_id"]]["workflow_id"] == f"engagement-{UK_TM}"
    # forward to the journals: the period's revenue journal (by the close) and the batch
    # journal of the posted week (by the posting run), each with the ERP's own id
    journals = [r for r in body["chain"] if r["record_type"] == "journal"]
    revenue = [j for j in journals if j["external_id"] == october["revenue_journal_id"]]
    assert len(revenue) == 1 and revenue[0]["id"] != revenue[0]["external_id"]
    assert revenue[0]["recorded_by"] == "erp.post_documents" and revenue[0]["instance"] == stack.instance
    posted = [j for j in journals if j["recorded_by"] == "posting.post_page"]
    assert posted and all(j["workflow_id"].startswith("posting-UK01-") for j in posted)
    assert all(engagement["project_id"] in j["related"] for j in posted)
    assert all(r["instance"] == stack.instance for r in body["chain"] if r["system"] == "erp")
    # every record names the workflow that wrote it (accounts and the customer are shared, learned)
    assert all(r["workflow_id"] for r in body["chain"] if r["record_type"] not in ("account", "customer"))

    # Any of the ids leads to the same chain: the opportunity, d2r's invoice id, the project,
    # the posting journal's ERP id.
    want = set(records)
    for key in (UK_TM, invoice["invoice_id"], engagement["project_id"], posted[0]["id"]):
        other = await stack.api.get(f"/v1/lineage/{key}", headers=FINANCE)
        assert other.status_code == 200, (key, other.text)
        assert {(r["system"], r["record_type"], r["id"]) for r in other.json()["chain"]} == want, key
    missing = await stack.api.get("/v1/lineage/no-such-record", headers=FINANCE)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
