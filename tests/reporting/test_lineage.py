"""The key map and GET /v1/lineage/{key} on the hub: the ids one engagement's writes hold
(the engagement's hub write, the ERP posting of its documents, a posting page's batch
journal, an ERP employee from master data) meet on one row per record, repeat writes change
nothing, and any of the ids leads to the whole chain."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
from fastapi import FastAPI

from activities.reporting import engagement_keys
from api import lineage as lineage_api
from api.auth import Authenticator, Principal, TokenTable
from api.problems import install_problem_handlers
from api.settings import DEV_TOKENS
from contracts.reporting import RecordEngagementInput
from domain.deal import DealRules, Engagement, validate_deal
from domain.ids import external_id
from domain.model import Invoice, Lineage
from domain.money import Money
from reporting.hub import ReportingHub
from reporting.keymap import KeyRecord, employee_key
from tests.workflows import scenario

WID = "engagement-006REF"
PROJECT, ORDER, CUSTOMER = "a0PREF", "SO-88", "C-42"
INVOICE, ERP_INVOICE = "INV-engagement-006REF-2027-01", "5501"
JOURNAL, ERP_JOURNAL = "je-rev-SO-88-2027-01", "7702"
POSTING_JOURNAL = "posting-UK01-2027-01-31:p0:time:UK01:GBP:0"


def engagement() -> Engagement:
    e = validate_deal(scenario.reference_opportunity(), DealRules(legal_entities={"UK01": "GBP"}))
    assert isinstance(e, Engagement)
    return e


def gbp(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


def hub_write(e: Engagement) -> RecordEngagementInput:
    lineage = Lineage(
        opportunity_id=e.opportunity_id,
        customer_id=e.customer.customer_id,
        project_id=PROJECT,
        contract_id=ORDER,
        legal_entity="UK01",
    )
    invoice = Invoice(
        invoice_id=INVOICE,
        lineage=lineage,
        customer_id=e.customer.customer_id,
        currency="GBP",
        invoice_date=date(2027, 1, 31),
        due_date=date(2027, 3, 2),
        period="2027-01",
        lines=[],
        net_total=gbp("100"),
        tax_total=gbp("0"),
        total=gbp("100"),
    )
    return RecordEngagementInput(
        workflow_id=WID,
        engagement=e,
        project_id=PROJECT,
        contract_id=ORDER,
        erp_customer_id=CUSTOMER,
        invoices=[invoice],
    )


def erp_posting(e: Engagement) -> list[KeyRecord]:
    """What erp.post_documents records: the ERP's own ids of the invoice and the revenue journal."""
    common = {"system": "erp", "instance": "erp-uk", "opportunity_id": e.opportunity_id, "project_id": PROJECT,
              "legal_entity": "UK01", "source": "erp.post_documents", "workflow_id": WID}  # fmt: skip
    return [
        KeyRecord(record_type="invoice", external_id=INVOICE, record_id=ERP_INVOICE, related=(ORDER,), **common),
        KeyRecord(record_type="journal", external_id=JOURNAL, record_id=ERP_JOURNAL, **common),
    ]


def app_for(hub: ReportingHub) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    grants = {t: Principal(s, r) for t, (s, r) in DEV_TOKENS.items()}
    grants["us-finance"] = Principal("us", frozenset({"finance"}), frozenset({"US01"}))
    app.state.authenticator = Authenticator(None, TokenTable(grants))
    app.state.hub = hub
    app.include_router(lineage_api.router)
    return app


async def test_one_row_per_record_whoever_writes_it_and_repeats_change_nothing(hub: ReportingHub) -> None:
    e = engagement()
    keys = engagement_keys(hub_write(e), "erp-uk", "default", source="reporting.record_engagement")
    first = await hub.record_keys(keys)
    # opportunity, its accounts, project, sales order, customer, invoice
    assert first == len(keys) == 5 + len(e.customer.hierarchy)
    assert await hub.record_keys(keys) == 0  # the same write again: nothing rewritten
    assert await hub.record_keys(erp_posting(e)) == 2  # the invoice learns its ERP id; the journal is new
    assert await hub.record_keys(erp_posting(e)) == 0
    [invoice] = await hub.pool.fetch("SELECT * FROM hub_key_map WHERE record_type = 'invoice'")
    assert (invoice["record_key"], invoice["record_id"], invoice["instance"]) == (INVOICE, ERP_INVOICE, "erp-uk")
    assert invoice["source"] == "reporting.record_engagement" and invoice["workflow_id"] == WID
    [order] = await hub.pool.fetch("SELECT * FROM hub_key_map WHERE record_type = 'sales_order'")
    assert order["record_key"] == external_id(WID, "sales-order") and order["record_id"] == ORDER


async def test_any_id_leads_to_the_whole_chain(hub: ReportingHub) -> None:
    e = engagement()
    await hub.record_keys(engagement_keys(hub_write(e), "erp-uk", "default", source="reporting.record_engagement"))
    await hub.record_keys(erp_posting(e))
    # a posting page's batch journal carries the project's time (and other projects')
    await hub.record_keys(
        [KeyRecord(system="erp", instance="erp-uk", record_type="journal", external_id=POSTING_JOURNAL,
                   record_id="7800", legal_entity="UK01", related=(PROJECT, "a0POTHER"), source="posting.post_page",
                   workflow_id="posting-UK01-2027-01-31")]
    )  # fmt: skip
    # master data records an ERP employee it created (not tied to a deal)
    await hub.record_keys(
        [employee_key(instance="erp-uk", legal_entity="UK01", consultant_id="003ALAN", erp_employee_id="E-9",
                      workflow_id="master-data-consultants")]
    )  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(hub)), base_url="http://t") as api:
        finance = {"Authorization": "Bearer dev-finance"}
        chains = {}
        for key in (ERP_INVOICE, INVOICE, e.opportunity_id, PROJECT, ERP_JOURNAL, CUSTOMER, "7800"):
            response = await api.get(f"/v1/lineage/{key}", headers=finance)
            assert response.status_code == 200, (key, response.text)
            body = response.json()
            assert body["opportunities"] == [e.opportunity_id], key
            chains[key] = {(r["system"], r["record_type"], r["id"]) for r in body["chain"]}
        chain = chains[ERP_INVOICE]
        assert all(c == chain for c in chains.values()), chains
        assert {
            ("crm", "opportunity", e.opportunity_id),
            ("psa", "project", PROJECT),
            ("erp", "customer", CUSTOMER),
            ("erp", "sales_order", ORDER),
            ("erp", "invoice", ERP_INVOICE),
            ("erp", "journal", ERP_JOURNAL),
            ("erp", "journal", "7800"),
        } <= chain
        body = (await api.get(f"/v1/lineage/{ERP_INVOICE}", headers=finance)).json()
        [matched] = body["matched"]
        assert matched["external_id"] == INVOICE and matched["instance"] == "erp-uk"
        assert matched["workflow_id"] == WID and matched["recorded_by"] == "reporting.record_engagement"
        # the chain reads deal to books
        types = [r["record_type"] for r in body["chain"]]
        assert types.index("opportunity") < types.index("project") < types.index("invoice") < types.index("journal")
        # the employee leads to itself (no deal of its own yet)
        employee = (await api.get("/v1/lineage/E-9", headers=finance)).json()
        assert [r["record_type"] for r in employee["matched"]] == ["employee"]

        unknown = await api.get("/v1/lineage/no-such-id", headers=finance)
        assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
        assert (await api.get(f"/v1/lineage/{ERP_INVOICE}")).status_code == 401
        # a finance user of US01 only: the UK01 invoice is outside their scope
        assert (
            await api.get(f"/v1/lineage/{ERP_INVOICE}", headers={"Authorization": "Bearer us-finance"})
        ).status_code == 403
        bad = await api.get("/v1/lineage/a%20b", headers=finance)
        assert bad.status_code == 422
