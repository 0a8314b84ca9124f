"""Contract tests: the D365 connector against the D365 simulator (in process), for every
ERP capability d2r uses — with lost responses, a locked period and throttling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.dynamics import DynamicsClient, DynamicsConfig, DynamicsErp, DynamicsPosting, DynamicsReceivables
from connectors.dynamics.extract import DynamicsExtract
from connectors.errors import PeriodLockedError, RateLimitedError, UnavailableError
from domain.deal import ContractLine, Engagement
from domain.model import (
    CreditMemo,
    CreditMemoLine,
    Invoice,
    InvoiceLine,
    JournalEntry,
    JournalLine,
    Lineage,
    SourceKind,
    TaxLine,
)
from domain.money import Money
from domain.tax import TaxTreatment
from simulators.dynamics import DynamicsSettings, create_app
from tests.connectors.conftest import Admin, Salesforce

BASE = "http://127.0.0.1:8303"
OPP_UK = "006Dd0000000002IAA"  # Globex UK Ltd, UK01, GBP, T&M 300 h x 150
PROJECT = "a0PDd0000000009IAA"


@dataclass
class D365:
    admin: Admin
    client: DynamicsClient
    erp: DynamicsErp


async def make_d365(tmp_path: Path, name: str = "d365") -> D365:
    """The D365 simulator in process and the connector's client on it."""
    settings = DynamicsSettings(db=str(tmp_path / f"{name}.sqlite"), seed="demo", port=8303)
    app = create_app(settings)
    client = DynamicsClient(
        DynamicsConfig(base_url=BASE, tenant=settings.tenant, client_id="d2r-dev", client_secret="d2r-dev-secret"),
        transport=httpx.ASGITransport(app=app),
    )
    return D365(Admin(app, BASE), client, DynamicsErp(client))


@pytest.fixture
async def d365(tmp_path: Path) -> AsyncIterator[D365]:
    made = await make_d365(tmp_path)
    yield made
    await made.client.aclose()
    await made.admin.aclose()
    made.admin.app.store.close()


async def uk_engagement(sf: Salesforce) -> Engagement:
    from domain.deal import DealRules, validate_deal

    rules = DealRules(legal_entities={"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"})
    result = validate_deal(await sf.crm.read_opportunity(OPP_UK), rules)
    assert isinstance(result, Engagement), result
    return result


def gbp(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


def lineage() -> Lineage:
    return Lineage(
        opportunity_id=OPP_UK,
        customer_id="001Dd0000000003IAA",
        project_id=PROJECT,
        contract_id="C-9",
        legal_entity="UK01",
    )


def uk_invoice(invoice_id: str = "INV-engagement-9-2026-11", nets: tuple[str, ...] = ("4500.00", "333.33")) -> Invoice:
    lines = []
    for i, net in enumerate(nets, 1):
        tax = (Decimal(net) * Decimal("0.20")).quantize(Decimal("0.01"))  # d2r's rule: per line, half up
        lines.append(
            InvoiceLine(
                invoice_line_id=f"{invoice_id}:{i}",
                contract_line_id=f"L-{i}",
                billing_event_id=f"BE-{invoice_id}-{i}",
                kind=SourceKind.TIME,
                description=f"Consultant time, line {i}",
                net=gbp(net),
                tax=TaxLine(
                    treatment=TaxTreatment.STANDARD, jurisdiction="GB", rate=Decimal("0.20"), amount=gbp(str(tax))
                ),
            )
        )
    net_total = sum((line.net.amount for line in lines), Decimal(0))
    tax_total = sum((line.tax.amount.amount for line in lines), Decimal(0))
    return Invoice(
        invoice_id=invoice_id,
        lineage=lineage(),
        customer_id="001Dd0000000003IAA",
        currency="GBP",
        invoice_date=date(2026, 11, 30),
        due_date=date(2026, 12, 30),
        period="2026-11",
        lines=lines,
        net_total=gbp(str(net_total)),
        tax_total=gbp(str(tax_total)),
        total=gbp(str(net_total + tax_total)),
    )


def revenue_journal(journal_id: str = "JE-engagement-9-2026-11", amount: str = "4500.00") -> JournalEntry:
    zero = gbp("0")
    return JournalEntry(
        journal_entry_id=journal_id,
        lineage=lineage(),
        legal_entity="UK01",
        entry_date=date(2026, 11, 30),
        period="2026-11",
        currency="GBP",
        memo="Revenue 2026-11",
        lines=[
            JournalLine(account="1250 Contract balance", debit=gbp(amount), credit=zero, memo="recognised"),
            JournalLine(account="4000 Services revenue", debit=zero, credit=gbp(amount), memo="recognised"),
        ],
    )


async def lost_then_retry(admin: Admin, call: Any) -> Any:
    """The first attempt commits but its answer is lost; the retry must not write again."""
    await admin.faults(response_lost_rate=1.0, seed=1)
    with pytest.raises(UnavailableError):
        await call()
    await admin.clear_faults()
    return await call()


async def provision(d365: D365, eng: Engagement) -> tuple[str, str]:
    customer = await d365.erp.upsert_customer(eng, f"d2r:customer:{eng.customer.customer_id}")
    order = await d365.erp.create_sales_order(eng, customer, PROJECT, "d2r:engagement-9:sales-order")
    return customer, order


# ---- provisioning ------------------------------------------------------------------------------


async def test_customer_is_keyed_by_d2r_and_survives_a_lost_response(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    external = f"d2r:customer:{eng.customer.customer_id}"
    first = await lost_then_retry(d365.admin, lambda: d365.erp.upsert_customer(eng, external))
    assert first == f"uk01:C-{eng.customer.customer_id.upper()}"
    assert await d365.erp.upsert_customer(eng, external) == first
    customers = [r for r in await d365.admin.records("CustomersV3") if r.get("D2RReference") == external]
    assert len(customers) == 1
    assert (customers[0]["OrganizationName"], customers[0]["SalesCurrencyCode"]) == (eng.customer.name, "GBP")
    assert (await d365.admin.duplicates())["count"] == 0


async def test_sales_order_with_lines_once_cancel_and_recreate(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    customer = await d365.erp.upsert_customer(eng, "d2r:customer:x")
    create = lambda: d365.erp.create_sales_order(eng, customer, PROJECT, "d2r:engagement-9:sales-order")  # noqa: E731
    order = await lost_then_retry(d365.admin, create)
    assert await create() == order
    headers = await d365.admin.records("SalesOrderHeadersV2")
    lines = await d365.admin.records("SalesOrderLines")
    assert len(headers) == 1 and len(lines) == len(eng.lines)
    assert headers[0]["OrderTotalAmount"] == "45000"  # 300 h x 150, sent as the string "45000.00"
    assert headers[0]["D2ROpportunityId"] == OPP_UK and headers[0]["D2RProjectId"] == PROJECT
    # compensation deletes the un-invoiced order with its lines; repeating it finds nothing
    assert await d365.erp.cancel_sales_order("d2r:engagement-9:sales-order") is True
    assert await d365.erp.cancel_sales_order("d2r:engagement-9:sales-order") is False
    assert await d365.admin.records("SalesOrderLines") == []
    assert await create() == order  # a later run of the saga creates it afresh


async def test_order_lines_replaced_atomically_and_closed(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    await provision(d365, eng)
    amended = [
        *eng.lines,
        ContractLine(
            line_id="L-extra",
            name="Extra advisory",
            billing_model=eng.lines[0].billing_model,
            revenue_method=eng.lines[0].revenue_method,
            amount=gbp("1200.50"),
        ),
    ]
    await d365.erp.update_sales_order_lines("d2r:engagement-9:sales-order", amended)
    calls = d365.client.calls
    await d365.erp.update_sales_order_lines("d2r:engagement-9:sales-order", amended)  # the same state: one read
    assert d365.client.calls - calls == 2
    [header] = await d365.admin.records("SalesOrderHeadersV2")
    assert header["OrderTotalAmount"] == "46200.5"
    assert len(await d365.admin.records("SalesOrderLines")) == len(amended)
    await d365.erp.close_sales_order("d2r:engagement-9:sales-order")
    await d365.erp.close_sales_order("d2r:engagement-9:sales-order")
    [header] = await d365.admin.records("SalesOrderHeadersV2")
    assert header["SalesOrderStatus"] == "Canceled"


# ---- billing and revenue ------------------------------------------------------------------------


async def test_invoice_with_tax_posts_once_under_a_lost_response(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    customer, order = await provision(d365, eng)
    inv = uk_invoice()
    posted = await lost_then_retry(d365.admin, lambda: d365.erp.post_invoice(inv, customer, order))
    assert posted == "uk01:CIV-000001"
    assert await d365.erp.post_invoice(inv, customer, order) == posted
    [header] = await d365.admin.records("FreeTextInvoiceHeaders")
    # d2r's tax (900.00 + 66.67) is what D365 computed from the GBS20 group
    assert (header["TotalTaxAmount"], header["TotalInvoiceAmount"]) == ("966.67", "5800")
    assert len(await d365.admin.records("CustomerTransactions")) == 1
    status = await d365.erp.invoice_status(inv.invoice_id)
    assert status is not None and status.amount_remaining == gbp("5800.00") and status.status == "Open"
    lineage_ = await d365.erp.invoice_lineage(posted)
    assert lineage_ is not None and (lineage_.invoice_id, lineage_.opportunity_id) == (inv.invoice_id, OPP_UK)
    assert await d365.erp.invoice_lineage("uk01:CIV-999999") is None


async def test_locked_period_refuses_and_writes_nothing(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    customer, order = await provision(d365, eng)
    posting = DynamicsPosting(d365.client)
    assert await posting.period_status("2026-11", "UK01") == "Open"
    assert await posting.lock_period("2026-11", "UK01") is True
    assert await posting.lock_period("2026-11", "UK01") is False  # already on hold
    assert await posting.period_status("2026-11", "UK01") == "OnHold"
    with pytest.raises(PeriodLockedError):
        await d365.erp.post_invoice(uk_invoice(), customer, order)
    with pytest.raises(PeriodLockedError):
        await d365.erp.post_journal(revenue_journal())
    assert await d365.admin.records("FreeTextInvoiceHeaders") == []
    assert await d365.admin.records("LedgerJournalHeaders") == []


async def test_credit_note_settles_and_its_void_charges_back_once(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    customer, order = await provision(d365, eng)
    inv = uk_invoice()
    erp_invoice = await d365.erp.post_invoice(inv, customer, order)
    line = inv.lines[0]
    memo = CreditMemo(
        credit_memo_id="CM-engagement-9-1",
        lineage=lineage(),
        invoice_id=inv.invoice_id,
        memo_date=date(2026, 11, 30),
        reason="Hours billed twice",
        lines=[
            CreditMemoLine(
                credit_memo_line_id="CM-engagement-9-1:1",
                invoice_line_id=line.invoice_line_id,
                contract_line_id=line.contract_line_id,
                kind=line.kind,
                net=gbp("450.00"),
                tax=gbp("90.00"),
                price_concession=False,
            )
        ],
        net_total=gbp("450.00"),
        tax_total=gbp("90.00"),
        total=gbp("540.00"),
    )
    credit = await lost_then_retry(d365.admin, lambda: d365.erp.post_credit_memo(memo, customer, erp_invoice))
    assert credit == "uk01:CCN-000001"
    status = await d365.erp.invoice_status(inv.invoice_id)
    assert status is not None and status.amount_remaining == gbp("5260.00")  # 5,800 - 540 settled
    assert await d365.erp.void_credit_memo(memo.credit_memo_id) is True
    assert await d365.erp.void_credit_memo(memo.credit_memo_id) is True  # the undo exists: nothing new
    voids = [r for r in await d365.admin.records("FreeTextInvoiceHeaders") if r["D2RReference"].endswith(":void")]
    assert len(voids) == 1 and voids[0]["TotalInvoiceAmount"] == "540"
    assert await d365.erp.void_credit_memo("CM-never-posted") is False


async def test_revenue_journal_and_its_reversal_post_once(d365: D365) -> None:
    journal = revenue_journal()
    posted = await lost_then_retry(d365.admin, lambda: d365.erp.post_journal(journal))
    assert posted.startswith("uk01:JE-")
    assert await d365.erp.post_journal(journal) == posted
    assert await d365.erp.reverse_journal(journal.journal_entry_id) is True
    assert await d365.erp.reverse_journal(journal.journal_entry_id) is True
    assert await d365.erp.reverse_journal("JE-never-posted") is False
    headers = await d365.admin.records("LedgerJournalHeaders")
    assert sorted(h["D2RReference"] for h in headers) == [
        journal.journal_entry_id,
        f"{journal.journal_entry_id}:reversal",
    ]
    entries = await d365.admin.records("GeneralJournalAccountEntries")
    by_account: dict[str, Decimal] = {}
    for e in entries:
        by_account[e["MainAccount"]] = by_account.get(e["MainAccount"], Decimal(0)) + Decimal(
            e["TransactionCurrencyAmount"]
        )
    assert by_account == {"1250": Decimal(0), "4000": Decimal(0)}  # posted, then reversed
    assert len(entries) == 4


# ---- receivables -----------------------------------------------------------------------------------


async def pay(d365: D365, account: str, invoice_number: str, amount: str, on: str, batch: str) -> None:
    """The AR clerk posts a customer payment journal that settles the invoice."""
    from connectors.dynamics.batch import Request
    from connectors.dynamics.client import key

    record_key = key(dataAreaId="uk01", JournalBatchNumber=batch)
    await d365.client.changeset(
        [
            Request(
                "POST",
                "CustomerPaymentJournalHeaders",
                {"dataAreaId": "uk01", "JournalBatchNumber": batch, "JournalName": "CustPay"},
            ),
            Request(
                "POST",
                "CustomerPaymentJournalLines",
                {
                    "dataAreaId": "uk01",
                    "JournalBatchNumber": batch,
                    "TransactionDate": on,
                    "AccountDisplayValue": account,
                    "CreditAmount": amount,
                    "CurrencyCode": "GBP",
                    "MarkedInvoice": invoice_number,
                    "PaymentReference": f"BACS {batch}",
                },
            ),
            Request("POST", f"/data/CustomerPaymentJournalHeaders{record_key}/Microsoft.Dynamics.DataEntities.post"),
        ]
    )


async def test_receipts_and_open_items(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    customer, order = await provision(d365, eng)
    first = await d365.erp.post_invoice(uk_invoice("INV-engagement-9-2026-11"), customer, order)
    await d365.erp.post_invoice(uk_invoice("INV-engagement-9-2026-12x", nets=("100.00",)), customer, order)
    await pay(d365, customer.split(":", 1)[1], first.split(":", 1)[1], "1000.00", "2026-12-10", "PAY-1")
    receivables = DynamicsReceivables(d365.client)
    receipts = await receivables.receipts(customer, date(2026, 12, 1), date(2026, 12, 31), OPP_UK)
    assert [(r.invoice_id, r.erp_invoice_id, r.amount, r.received_on) for r in receipts] == [
        ("INV-engagement-9-2026-11", first, gbp("1000.00"), date(2026, 12, 10))
    ]
    assert await receivables.receipts(customer, date(2026, 12, 1), date(2026, 12, 31), "006-other") == []
    assert await receivables.subsidiary_id("UK01") == "uk01" and await receivables.subsidiary_id("US01") is None
    due = await receivables.fell_due("uk01", date(2026, 12, 1), date(2026, 12, 31))
    assert sorted((o.invoice_id, o.amount_remaining.amount) for o in due) == [
        ("INV-engagement-9-2026-11", Decimal("4800.00")),
        ("INV-engagement-9-2026-12x", Decimal("120.00")),
    ]


# ---- posting, extracts -------------------------------------------------------------------------------


async def test_time_bills_page_isolates_a_poison_record_and_survives_a_lost_response(d365: D365) -> None:
    from domain.postings import TimeBill

    posting = DynamicsPosting(d365.client)

    def bill(n: int, employee: str = "003Dd0000000003IAA", day: date = date(2026, 11, 2)) -> TimeBill:
        return TimeBill(
            external_id=f"d2r:tb:TC-{n}:{day}",
            employee_id=employee,
            legal_entity="UK01",
            work_date=day,
            hours="7.5",
            billable=True,
            memo="Alan Turing on project",
            project_id=PROJECT,
            opportunity_id=OPP_UK,
            entry_id=f"TC-{n}:{day}",
        )

    bills = [bill(1), bill(2), bill(3, employee="003-nobody"), bill(4, day=date(2027, 1, 4))]
    await DynamicsPosting(d365.client).lock_period("2027-01", "UK01")
    await d365.admin.faults(response_lost_rate=1.0, seed=1)
    with pytest.raises(UnavailableError):
        await posting.post_time_bills(bills)
    await d365.admin.clear_faults()
    outcomes = await posting.post_time_bills(bills)
    assert [o.error_code is None for o in outcomes] == [True, True, False, False]
    assert outcomes[3].error_code == "PERIOD_NOT_OPEN"
    assert len(await d365.admin.records("ProjectHourJournalLines")) == 2
    [total] = await DynamicsExtract(d365.client).time_bills([PROJECT], date(2026, 11, 1), date(2026, 11, 30))
    assert (total.hours, total.records) == (Decimal("15.0"), 2)


async def test_posting_journal_sources_and_extracts(sf: Salesforce, d365: D365) -> None:
    from domain.postings import PostingJournal, PostingLine

    posting = DynamicsPosting(d365.client)
    external = "posting-UK01-2026-11-02:p0:time:UK01:GBP:0"
    assert await posting.journal_sources(external) is None
    journal = PostingJournal(
        external_id=external,
        legal_entity="UK01",
        currency="GBP",
        tran_date=date(2026, 11, 2),
        memo="Time 2 Nov",
        lines=[
            PostingLine(
                account="5000 Project cost",
                debit="412.50",
                memo="time TC-1:2026-11-02 7.5h",
                source_id="TC-1",
                project_id=PROJECT,
            ),
            PostingLine(
                account="2150 Accrued cost",
                credit="412.50",
                memo="time TC-1:2026-11-02 7.5h",
                source_id="TC-1",
                project_id=PROJECT,
            ),
        ],
    )
    outcome = await posting.post_journal(journal)
    assert outcome.error_code is not None and "2150" in (outcome.error or "")  # no such main account: refused alone
    journal.lines[1].account = "1250 Contract balance"
    outcome = await posting.post_journal(journal)
    assert outcome.error_code is None and outcome.record_id
    assert await posting.journal_sources(external) == ["TC-1"]
    extract = DynamicsExtract(d365.client)
    count, totals = await extract.time_journal_lines("posting-UK01-", date(2026, 11, 1), date(2026, 11, 30))
    assert count == 1 and [(t.project_id, t.hours) for t in totals] == [(PROJECT, Decimal("7.5"))]
    eng = await uk_engagement(sf)
    customer, order = await provision(d365, eng)
    await d365.erp.post_invoice(uk_invoice(), customer, order)
    [invoices] = await extract.invoices("UK01", date(2026, 11, 1), date(2026, 11, 30))
    assert (invoices.project_id, invoices.invoice_total, invoices.records) == (PROJECT, Decimal("5800"), 1)


# ---- transport ----------------------------------------------------------------------------------------


async def test_expired_token_is_refreshed_and_throttling_is_retryable(sf: Salesforce, d365: D365) -> None:
    eng = await uk_engagement(sf)
    await d365.erp.upsert_customer(eng, "d2r:customer:t")
    await d365.admin.expire_tokens()
    assert await d365.erp.upsert_customer(eng, "d2r:customer:t")  # one refresh, transparently
    await d365.admin.faults(throttle_burst=1, retry_after_s=9)
    with pytest.raises(RateLimitedError) as throttled:
        await d365.erp.upsert_customer(eng, "d2r:customer:t")
    assert throttled.value.retry_after == 9 and throttled.value.retryable


# ---- through the registry and the activities ------------------------------------------------------


async def test_registry_routes_uk01_to_d365_and_the_activity_survives_a_lost_response(
    sf: Salesforce, d365: D365, ns: Any
) -> None:
    """UK01 books in D365, US01 in NetSuite, by routing configuration; the D365 connection is
    built by the registry like any vendor's, and an activity whose first answer is lost
    retries into the one record it wrote."""
    from contextlib import AsyncExitStack

    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from activities.erp import ErpActivities
    from connectors.dynamics import erp_connection
    from connectors.endpoints import Connections, Endpoint
    from connectors.netsuite import erp_connection as netsuite_connection
    from connectors.registry import connect_erp
    from connectors.routing import ErpRouter
    from contracts.erp import UpsertCustomerInput
    from tests.connectors.conftest import engagement as us_engagement

    async with AsyncExitStack() as stack:
        endpoint = Endpoint(
            name="d365",
            url=BASE,
            client_id="d2r-dev",
            client_secret="d2r-dev-secret",
            options={"tenant": DynamicsSettings().tenant},
        )
        registered = connect_erp("dynamics", endpoint, Connections(stack))
        assert registered.system == "dynamics" and isinstance(registered.erp, DynamicsErp)
        assert registered.period_lock is registered.posting
        dynamics = erp_connection(d365.client)  # the same bundle, on the in-process simulator
        router = ErpRouter({"d365": dynamics, "default": netsuite_connection(ns.client)}, {"UK01": "d365"}, "default")
        activities = ErpActivities(router)
        uk, us = await uk_engagement(sf), await us_engagement(sf.crm)
        env = ActivityEnvironment()
        data = UpsertCustomerInput(engagement=uk, external_id=f"d2r:customer:{uk.customer.customer_id}")
        await d365.admin.faults(response_lost_rate=1.0, seed=1)
        with pytest.raises(ApplicationError) as lost:
            await env.run(activities.upsert_customer, data)
        assert lost.value.type == "Unavailable" and not lost.value.non_retryable
        await d365.admin.clear_faults()
        first, second = await env.run(activities.upsert_customer, data), await env.run(activities.upsert_customer, data)
        assert first == second and first.erp_customer_id.startswith("uk01:")
        customers = await d365.admin.records("CustomersV3")
        assert [c["CustomerAccount"] for c in customers if c.get("D2RReference") == data.external_id] == [
            first.erp_customer_id.split(":", 1)[1]
        ]
        us_customer = await env.run(
            activities.upsert_customer, UpsertCustomerInput(engagement=us, external_id="d2r:customer:us")
        )
        assert not us_customer.erp_customer_id.startswith("uk01:")  # NetSuite's internal id
        assert len(await ns.admin.records("customer")) == 1
