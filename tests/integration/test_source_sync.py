"""The source sync on real activities: the Salesforce/Certinia simulator and two NetSuite
instances in process (ASGI), the embedded PostgreSQL hub, and a time-skipping Temporal server.

Time is posted the real way first (TimeAndExpensePostingWorkflow: US01 as time bills, with a
consultant who moved to UK01 mid-month so part of the time sits in the UK instance; DE01 as
batch journals), invoices are posted to NetSuite and recorded in the hub as the engagement
would. Then: a clean period reconciles with zero differences after the sync, re-running the
sync changes nothing, and planted differences (an extra PSA hour, a lost ERP time bill, an
ERP invoice off by 0.01) are found — and nothing else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.posting import HubTimeFacts, PostingActivities
from activities.reporting import load_reference_data
from activities.source_sync import SourceSyncActivities
from connectors.certinia import psa_connection
from connectors.dynamics import erp_connection as d365_connection
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter, PsaRouter
from connectors.salesforce import crm_connection
from contracts.ids import sync_workflow_id
from contracts.posting import PostingConfig, PostingInput
from contracts.queues import TaskQueues
from contracts.source_sync import SourceSyncInput, SourceSyncResult
from domain.reference_data import default_fx_rates, default_legal_entities
from reporting import models as m
from reporting.hub import ReportingHub
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.connectors.conftest import NetSuite, Salesforce, invoice, make_netsuite, make_salesforce
from tests.connectors.test_dynamics_erp import make_d365
from tests.reporting.conftest import db_dsn, hub, pg_root, template_dsn  # noqa: F401 - fixtures
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow

pytestmark = pytest.mark.integration

PERIOD = "2026-11"
CURRENCIES = {"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"}


@dataclass
class World:
    client: Client
    hub: ReportingHub
    sf: Salesforce
    ns_us: NetSuite  # US01, DE01
    ns_uk: Any  # UK01: a NetSuite instance, or Dynamics 365 (tests.connectors.test_dynamics_erp.D365)
    queues: TaskQueues
    workflow_queue: str
    people: dict[str, str]
    uk_erp: str = "netsuite"

    async def post_time(self, legal_entity: str, mode: str) -> None:
        await self.client.execute_workflow(
            TimeAndExpensePostingWorkflow.run,
            PostingInput(
                legal_entity=legal_entity,
                posting_date=date(2026, 11, 30),
                queues=self.queues,
                sweep_overdue=False,
                config=PostingConfig(time_mode=mode, projects_per_page=2),
            ),
            id=f"posting-{legal_entity}-2026-11-30",
            task_queue=self.workflow_queue,
        )

    async def sync(self, legal_entity: str, run: str) -> SourceSyncResult:
        return await self.client.execute_workflow(
            SourceSyncWorkflow.run,
            SourceSyncInput(
                legal_entity=legal_entity, period=PERIOD, queues=self.queues, projects_per_page=2, reconcile=True
            ),
            id=f"{sync_workflow_id(legal_entity, PERIOD)}-{run}",
            task_queue=self.workflow_queue,
        )

    async def source_totals(self, legal_entity: str) -> list[tuple[Any, ...]]:
        rows = await self.hub.pool.fetch(
            "SELECT source_system, project_id, hours, time_amount, invoice_total, currency, record_ids "
            "FROM recon_source_total WHERE legal_entity = $1 AND period = $2 ORDER BY 1, 2",
            legal_entity,
            PERIOD,
        )
        return [tuple(r) for r in rows]


@pytest.fixture(params=["netsuite", "dynamics"])
async def world(request: pytest.FixtureRequest, tmp_path: Path, hub: ReportingHub) -> AsyncIterator[World]:  # noqa: F811
    """UK01's books on a second NetSuite instance, then on Dynamics 365: US01's consultant who
    moves to UK01 books her later time there either way, and US01 must reconcile across both."""
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    sf = await make_salesforce(tmp_path, page_size=5)
    ns_us = await make_netsuite(tmp_path, "ns-us")
    ns_uk: Any = await make_netsuite(tmp_path, "ns-uk") if request.param == "netsuite" else await make_d365(tmp_path)
    uk_connection = (
        erp_connection(ns_uk.client, page_size=3) if request.param == "netsuite" else d365_connection(ns_uk.client)
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    tag = uuid.uuid4().hex[:6]
    queues = TaskQueues(crm=f"crm-{tag}", psa=f"psa-{tag}", erp=f"erp-{tag}")
    routing = {"UK01": "erp-uk"}
    psa = PsaRouter({"default": psa_connection(sf.client)}, {}, "default", system="psa")
    erp = ErpRouter(
        {"erp-us": erp_connection(ns_us.client, page_size=3), "erp-uk": uk_connection},
        routing,
        "erp-us",
    )
    posting = PostingActivities(
        psa,
        erp,
        CURRENCIES,
        default_fx_rates(),
        hub=HubTimeFacts(hub),
    )
    sync = SourceSyncActivities(psa, erp, hub, crm=crm_connection(sf.client).extract)
    info = (await sf.admin.http.get("/__admin/seed-info")).json()
    people = {c["name"]: c["id"] for c in info["consultants"]}
    workflow_queue = f"wf-{tag}"
    async with (
        Worker(
            env.client,
            task_queue=workflow_queue,
            workflows=[SourceSyncWorkflow, TimeAndExpensePostingWorkflow],
            activities=[sync.commit, sync.reconcile],
        ),
        Worker(env.client, task_queue=queues.psa, activities=[sync.psa_page]),
        Worker(env.client, task_queue=queues.erp, activities=[posting.post_page, sync.erp_time_page, sync.erp_entity]),
        Worker(env.client, task_queue=queues.crm, activities=[sync.crm_bookings]),
    ):
        yield World(env.client, hub, sf, ns_us, ns_uk, queues, workflow_queue, people, uk_erp=request.param)
    await env.shutdown()
    for made in (sf, ns_us, ns_uk):
        await made.client.aclose()
        await made.admin.aclose()
        made.admin.app.store.close()


def card(
    project: str, resource: str, start: date, hours: float, rate: float | None, status: str = "Approved", days: int = 5
) -> dict[str, Any]:
    """A week's timecard from `start`, `hours` on each of its first `days` weekdays."""
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    fields: dict[str, Any] = {}
    day, filled = start, 0
    while day < start + timedelta(days=7):
        if day.weekday() < 5 and filled < days:
            fields[f"pse__{names[day.weekday()]}_Hours__c"] = hours
            filled += 1
        day += timedelta(days=1)
    return {
        "pse__Project__c": project,
        "pse__Resource__c": resource,
        "pse__Start_Date__c": start.isoformat(),
        "pse__End_Date__c": (start + timedelta(days=6)).isoformat(),
        "pse__Status__c": status,
        "pse__Approved__c": status == "Approved",
        "pse__Billable__c": True,
        **({"pse__Bill_Rate__c": rate} if rate is not None else {}),
        **fields,
    }


async def post_invoice(
    w: World,
    ns: NetSuite,
    customer: str,
    invoice_id: str,
    project: str,
    legal_entity: str,
    on: date,
    net: str,
    tax: str,
    record_in_hub: bool = True,
) -> None:
    inv = invoice(invoice_id, on=on, net=net, tax=tax)
    inv = inv.model_copy(
        update={"lineage": inv.lineage.model_copy(update={"project_id": project, "legal_entity": legal_entity})}
    )
    await ns.erp.post_invoice(inv, customer, "SO-test")
    if record_in_hub:
        await w.hub.record_invoice(
            m.InvoiceFact(
                source_system="erp",
                source_record_id=inv.invoice_id,
                currency=inv.currency,
                invoice_date=inv.invoice_date,
                due_date=inv.due_date,
                net_amount=inv.net_total.amount,
                tax_amount=inv.tax_total.amount,
                total_amount=inv.total.amount,
                status="open",
                opportunity_id=inv.lineage.opportunity_id,
                customer_id=inv.lineage.customer_id,
                project_id=project,
                contract_id=inv.lineage.contract_id,
                legal_entity=legal_entity,
            )
        )


async def build_month(w: World) -> dict[str, str]:
    sf = w.sf.client
    p = {
        name: await sf.create(
            "pse__Proj__c",
            {
                "Name": name,
                "D2R_Legal_Entity__c": entity,
                "CurrencyIsoCode": CURRENCIES[entity],
                "pse__Is_Active__c": True,
            },
        )
        for name, entity in (("us-a", "US01"), ("us-b", "US01"), ("us-c", "US01"), ("de-a", "DE01"))
    }
    ada, hedy, grace = w.people["Ada Lovelace"], w.people["Hedy Lamarr"], w.people["Grace Hopper"]
    konrad, emmy = w.people["Konrad Zuse"], w.people["Emmy Noether"]
    # Hedy works for UK01 from 16 November: her time on US projects lands in the UK instance
    await sf.update(
        "Contact",
        hedy,
        {
            "D2R_Transfers__c": json.dumps(
                [{"effective_from": "2026-11-16", "legal_entity": "UK01", "cost_rate": 80, "currency": "GBP"}]
            )
        },
    )
    cards = [
        card(p["us-a"], ada, date(2026, 11, 2), 8, 250),
        card(p["us-a"], ada, date(2026, 11, 9), 7.5, 250, days=4),
        card(p["us-a"], hedy, date(2026, 11, 9), 6, 180),
        card(p["us-a"], hedy, date(2026, 11, 16), 6, 180),  # after the transfer
        card(p["us-b"], grace, date(2026, 10, 28), 4, 200),  # Wed 28 Oct .. Tue 3 Nov: two periods
        card(p["us-b"], grace, date(2026, 11, 23), 5, None),  # no bill rate: valued zero on every side
        card(p["us-b"], grace, date(2026, 11, 23), 9, 200, status="Submitted"),  # not approved: nowhere
        card(p["de-a"], konrad, date(2026, 11, 2), 8, 160),
        card(p["de-a"], emmy, date(2026, 11, 9), 7, 120, days=3),
        card(p["de-a"], emmy, date(2026, 10, 26), 7, 120),  # October only
    ]
    for c in cards:
        await sf.create("pse__Timecard_Header__c", c)
    await w.post_time("US01", "time_bill")
    await w.post_time("DE01", "journal")

    customer_us = await w.ns_us.client.upsert(
        "customer", "CUST-SYNC-US", {"companyName": "Sync Test Inc", "subsidiary": {"externalId": "US01"}}
    )
    customer_de = await w.ns_us.client.upsert(
        "customer", "CUST-SYNC-DE", {"companyName": "Sync Test GmbH", "subsidiary": {"externalId": "DE01"}}
    )
    await post_invoice(
        w, w.ns_us, customer_us, "INV-a-2026-11", p["us-a"], "US01", date(2026, 11, 30), "5250.00", "433.13"
    )
    await post_invoice(
        w, w.ns_us, customer_us, "INV-a-2026-11-2", p["us-a"], "US01", date(2026, 11, 15), "100.00", "0.00"
    )
    await post_invoice(
        w, w.ns_us, customer_us, "INV-b-2026-11", p["us-b"], "US01", date(2026, 11, 30), "1200.00", "99.00"
    )
    await post_invoice(
        w, w.ns_us, customer_us, "INV-b-2026-10", p["us-b"], "US01", date(2026, 10, 31), "800.00", "66.00"
    )  # October
    await post_invoice(
        w, w.ns_us, customer_de, "INV-de-2026-11", p["de-a"], "DE01", date(2026, 11, 30), "1000.00", "190.00"
    )
    return p


async def test_sync_reconciles_clean_is_idempotent_and_finds_planted_differences(world: World) -> None:
    w = world
    p = await build_month(w)
    uk_time = "timeBill" if w.uk_erp == "netsuite" else "ProjectHourJournalLines"
    assert len(await w.ns_uk.admin.records(uk_time)) == 5  # Hedy's week after the transfer

    first = await w.sync("US01", "1")
    assert first.status == "synced"
    assert first.reconciliation is not None and first.reconciliation.status == "clean", first
    assert first.reconciliation.differences == 0 and first.reconciliation.projects_checked == 2
    assert first.progress.projects == 3 and first.progress.page == 2  # two pages of two projects
    totals = await w.source_totals("US01")
    by = {(t[0], t[1]): t for t in totals}
    a, b = p["us-a"], p["us-b"]
    # us-a: Ada 5x8 + 4x7.5, Hedy 5x6 (US) + 5x6 (UK) = 130 h; 70 h x 250 + 60 h x 180
    assert by[("psa", a)][2:5] == (D("130"), D("28300"), None)
    assert by[("erp", a)][2:5] == (D("130"), None, D("5783.13"))
    # us-b: Mon 2 + Tue 3 Nov of the cross-month card (2 x 4 h at 200), 5 x 5 h at no rate
    assert by[("psa", b)][2:5] == (D("33"), D("1600"), None)
    assert by[("erp", b)][2:5] == (D("33"), None, D("1299"))
    assert by[("erp", b)][5] == "USD"
    cross = await w.sf.client.query_all(
        f"SELECT Id FROM pse__Timecard_Header__c WHERE pse__Project__c = '{b}' AND pse__Start_Date__c = 2026-10-28"
    )
    assert {f"{cross[0]['Id']}:2026-11-02", f"{cross[0]['Id']}:2026-11-03"} <= set(by[("psa", b)][6])
    assert f"{cross[0]['Id']}:2026-10-30" not in by[("psa", b)][6] + by[("erp", b)][6]
    assert ("psa", p["us-c"]) not in by  # a project without time or invoices is not listed

    de = await w.sync("DE01", "1")
    assert de.reconciliation is not None and de.reconciliation.status == "clean", de
    assert de.progress.erp_entity is not None and de.progress.erp_entity.journals >= 1
    de_totals = {(t[0], t[1]): t for t in await w.source_totals("DE01")}
    assert de_totals[("psa", p["de-a"])][2] == de_totals[("erp", p["de-a"])][2] == D("61")

    # Re-running changes nothing.
    again = await w.sync("US01", "2")
    assert again.reconciliation is not None and again.reconciliation.status == "clean"
    assert await w.source_totals("US01") == totals
    assert await w.hub.pool.fetchval("SELECT count(*) FROM recon_source_stage") == 0

    # Plant three differences.
    ada_card = (
        await w.sf.client.query_all(
            f"SELECT Id FROM pse__Timecard_Header__c WHERE pse__Project__c = '{a}' AND pse__Start_Date__c = 2026-11-02"
        )
    )[0]["Id"]
    await w.sf.client.update("pse__Timecard_Header__c", ada_card, {"pse__Monday_Hours__c": 9})  # +1 h in PSA
    bills = [
        r
        for r in await w.ns_us.admin.records("timeBill")
        if r.get("custcol_d2r_project_id") == b and r.get("tranDate") == "2026-11-24"
    ]
    assert len(bills) == 1
    await w.ns_us.client.delete("timeBill", str(bills[0]["id"]))  # a lost ERP posting: 5 h
    inv = await w.ns_us.client.get_by_external_id("invoice", "INV-b-2026-11")
    assert inv is not None
    items = [
        {k: v for k, v in line.items() if k in ("item", "description", "quantity", "rate", "amount", "tax1Amt")}
        for line in inv["item"]["items"]
    ]
    items[0]["tax1Amt"] = 99.01
    await w.ns_us.client.patch("invoice", str(inv["id"]), {"item": {"items": items}})  # off by 0.01

    planted = await w.sync("US01", "3")
    assert planted.reconciliation is not None and planted.reconciliation.status == "differences"
    run = await w.hub.reconciliation_differences(planted.reconciliation.run_id or 0)
    found = {(d["project_id"], d["metric"]): (d["psa_value"], d["erp_value"], d["hub_value"]) for d in run}
    assert found == {
        (a, "hours"): (D("131"), D("130"), D("130")),
        (a, "time_amount"): (D("28550"), None, D("28300")),
        (b, "hours"): (D("33"), D("28"), D("33")),
        (b, "invoice_total"): (None, D("1299.01"), D("1299")),
    }
    exceptions = await w.hub.list_exceptions(kind="reconciliation")
    assert {(x["project_id"], x["detail"]["values"].get("erp")) for x in exceptions} == {
        (a, "130"),
        (a, None),
        (b, "28"),
        (b, "1299.01"),
    }
    lost = next(d for d in run if d["metric"] == "hours" and d["project_id"] == b)
    # the records on each side name the lost entry
    missing = set(lost["detail"]["records"]["hub"]) - set(lost["detail"]["records"]["erp"])
    assert [x.endswith(":2026-11-24") for x in missing] == [True]

    # Fixed at the source (the hour taken back, the time bill re-posted, the invoice
    # corrected), the next sync reconciles clean and resolves the exceptions.
    await w.sf.client.update("pse__Timecard_Header__c", ada_card, {"pse__Monday_Hours__c": 8})
    await w.ns_us.client.upsert(
        "timeBill",
        str(bills[0]["externalId"]),
        {
            k: v
            for k, v in bills[0].items()
            if k in ("employee", "subsidiary", "tranDate", "hours", "isBillable", "approvalStatus", "memo")
            or k.startswith("custcol_")
        },
    )
    items[0]["tax1Amt"] = 99.00
    await w.ns_us.client.patch("invoice", str(inv["id"]), {"item": {"items": items}})
    fixed = await w.sync("US01", "4")
    assert fixed.reconciliation is not None and fixed.reconciliation.status == "clean", fixed.reconciliation
    assert await w.hub.list_exceptions(kind="reconciliation") == []
    assert await w.source_totals("US01") == totals


@pytest.mark.parametrize("world", ["dynamics"], indirect=True)
async def test_uk01_on_d365_and_us01_on_netsuite_reconcile_clean_in_one_hub(world: World) -> None:
    """The firm on two ERPs: UK01's project, time and invoice in Dynamics 365, US01's in
    NetSuite (with a transferred consultant's later time in D365): both entities reconcile
    clean, side by side in the same hub."""
    from tests.connectors.test_dynamics_erp import uk_invoice

    w = world
    await build_month(w)
    uk = await w.sf.client.create(
        "pse__Proj__c",
        {"Name": "uk-a", "D2R_Legal_Entity__c": "UK01", "CurrencyIsoCode": "GBP", "pse__Is_Active__c": True},
    )
    tim = w.people["Tim Berners-Lee"]
    await w.sf.client.create("pse__Timecard_Header__c", card(uk, tim, date(2026, 11, 9), 7, 150))
    await w.post_time("UK01", "time_bill")
    bills = [r for r in await w.ns_uk.admin.records("ProjectHourJournalLines") if r["D2RProjectId"] == uk]
    assert len(bills) == 5 and {b["dataAreaId"] for b in bills} == {"uk01"}

    # the UK invoice as the engagement posts it: a free-text invoice in D365, recorded in the hub
    created = await w.ns_uk.client.create(
        "CustomersV3",
        {
            "dataAreaId": "uk01",
            "CustomerAccount": "CUST-SYNC-UK",
            "OrganizationName": "Sync Test Ltd",
            "CustomerGroupId": "30",
            "SalesCurrencyCode": "GBP",
        },
    )
    assert created["CustomerAccount"] == "CUST-SYNC-UK"
    inv = uk_invoice("INV-uk-a-2026-11", nets=("5250.00",))
    inv = inv.model_copy(update={"lineage": inv.lineage.model_copy(update={"project_id": uk})})
    erp_invoice = await w.ns_uk.erp.post_invoice(inv, "uk01:CUST-SYNC-UK", "uk01:SO-test")
    assert erp_invoice == "uk01:CIV-000001"
    await w.hub.record_invoice(
        m.InvoiceFact(
            source_system="erp",
            source_record_id=inv.invoice_id,
            currency="GBP",
            invoice_date=inv.invoice_date,
            due_date=inv.due_date,
            net_amount=inv.net_total.amount,
            tax_amount=inv.tax_total.amount,
            total_amount=inv.total.amount,
            status="open",
            opportunity_id=inv.lineage.opportunity_id,
            customer_id=inv.lineage.customer_id,
            project_id=uk,
            contract_id=inv.lineage.contract_id,
            legal_entity="UK01",
        )
    )

    us01 = await w.sync("US01", "1")
    assert us01.reconciliation is not None and us01.reconciliation.status == "clean", us01
    uk01 = await w.sync("UK01", "1")
    assert uk01.reconciliation is not None and uk01.reconciliation.status == "clean", uk01
    assert uk01.reconciliation.projects_checked == 1 and uk01.reconciliation.differences == 0
    uk_totals = {(t[0], t[1]): t for t in await w.source_totals("UK01")}
    # 5 x 7 h at 150 in the PSA; the same 35 h in D365 and its invoice of 5,250 + 20 % VAT
    assert uk_totals[("psa", uk)][2:4] == (D("35"), D("5250"))
    assert uk_totals[("erp", uk)][2:5] == (D("35"), None, D("6300"))
    assert uk_totals[("erp", uk)][5] == "GBP"
    runs = await w.hub.pool.fetch("SELECT DISTINCT legal_entity FROM recon_source_total WHERE period = $1", PERIOD)
    assert {r["legal_entity"] for r in runs} >= {"US01", "UK01"}
