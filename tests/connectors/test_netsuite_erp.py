"""ERP on NetSuite: every ErpPort operation against the NetSuite simulator, plus routing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.errors import (
    ConfigurationError,
    NotFoundError,
    PeriodLockedError,
    RateLimitedError,
    UnavailableError,
    VendorValidationError,
)
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter
from domain.deal import Engagement
from domain.model import CreditMemo, CreditMemoLine, JournalLine, SourceKind
from tests.connectors.conftest import (
    NetSuite,
    Salesforce,
    engagement,
    invoice,
    journal,
    lineage,
    make_netsuite,
    usd,
)


async def provisioned(ns: NetSuite, eng: Engagement) -> tuple[str, str]:
    customer = await ns.erp.upsert_customer(eng, "engagement-1:customer")
    order = await ns.erp.create_sales_order(eng, customer, "a0PDd0000000001IAA", "engagement-1:sales-order")
    return customer, order


async def test_customer_and_sales_order_lifecycle(sf: Salesforce, ns: NetSuite) -> None:
    eng = await engagement(sf.crm)
    customer, order = await provisioned(ns, eng)
    assert await provisioned(ns, eng) == (customer, order)  # both upserts are idempotent
    so = await ns.client.get("salesOrder", order)
    assert so["total"] == 170000 and so["custbody_d2r_opportunity_id"] == eng.opportunity_id
    assert so["subsidiary"]["refName"] and so["currency"]["refName"] == "USD"

    amended = [
        line.model_copy(update={"amount": usd("150000")}) if line.billing_model == "fixed_fee" else line
        for line in eng.lines
    ]
    await ns.erp.update_sales_order_lines("engagement-1:sales-order", amended)
    await ns.erp.update_sales_order_lines("engagement-1:sales-order", amended)
    so = await ns.client.get("salesOrder", order)
    assert so["total"] == 200000 and len(so["item"]["items"]) == 2  # replaced, not appended

    await ns.erp.close_sales_order("engagement-1:sales-order")
    await ns.erp.close_sales_order("engagement-1:sales-order")
    assert (await ns.client.get("salesOrder", order))["status"]["refName"] == "Closed"
    with pytest.raises(NotFoundError):
        await ns.erp.close_sales_order("engagement-nope:sales-order")
    assert await ns.erp.cancel_sales_order("engagement-nope:sales-order") is False
    assert await ns.erp.cancel_sales_order("engagement-1:sales-order") is True
    assert (await ns.admin.duplicates())["count"] == 0


async def test_invoice_credit_memo_and_status(sf: Salesforce, ns: NetSuite) -> None:
    customer, order = await provisioned(ns, await engagement(sf.crm))
    doc = invoice(net="1000.00", tax="200.00")
    erp_id = await ns.erp.post_invoice(doc, customer, order)
    assert await ns.erp.post_invoice(doc, customer, order) == erp_id  # PUT eid: one invoice
    record = await ns.client.get("invoice", erp_id)
    assert record["externalId"] == doc.invoice_id
    assert (record["subtotal"], record["taxTotal"], record["total"]) == (1000, 200, 1200)
    assert record["tranDate"] == "2026-03-31" and record["dueDate"] == "2026-04-30"
    assert record["custbody_d2r_opportunity_id"] == doc.lineage.opportunity_id
    assert record["custbody_d2r_sales_order_id"] == order
    assert record["item"]["items"][0]["custcol_d2r_invoice_line_id"] == f"{doc.invoice_id}:1"

    status = await ns.erp.invoice_status(doc.invoice_id)
    assert status is not None and status.erp_invoice_id == erp_id and status.status == "Open"
    assert status.amount_remaining == usd("1200") and status.amount_paid == usd("0")
    assert await ns.erp.invoice_status("INV-never") is None

    memo = CreditMemo(
        credit_memo_id="CM-1",
        lineage=lineage(),
        invoice_id=doc.invoice_id,
        memo_date=date(2026, 4, 2),
        reason="Hours booked twice",
        net_total=usd("100"),
        tax_total=usd("20"),
        total=usd("120"),
        lines=[
            CreditMemoLine(
                credit_memo_line_id="CM-1:1",
                invoice_line_id=f"{doc.invoice_id}:1",
                contract_line_id="L-1",
                kind=SourceKind.TIME,
                net=usd("100"),
                tax=usd("20"),
                price_concession=False,
            )
        ],
    )
    memo_id = await ns.erp.post_credit_memo(memo, customer, erp_id)
    assert await ns.erp.post_credit_memo(memo, customer, erp_id) == memo_id  # found by externalId
    credit = await ns.client.get("creditMemo", memo_id)
    assert credit["createdFrom"]["id"] == erp_id and credit["total"] == 120 and credit["applied"] == 120
    status = await ns.erp.invoice_status(doc.invoice_id)
    assert status is not None and status.amount_remaining == usd("1080")

    assert await ns.erp.void_credit_memo("CM-1") is True
    assert await ns.erp.void_credit_memo("CM-1") is False  # nothing left to undo
    status = await ns.erp.invoice_status(doc.invoice_id)
    assert status is not None and status.amount_remaining == usd("1200")
    assert (await ns.admin.counts()).get("creditMemo", 0) == 0
    assert (await ns.admin.duplicates())["count"] == 0


async def test_journal_post_and_reverse(ns: NetSuite) -> None:
    entry = journal(amount="500.00")
    erp_id = await ns.erp.post_journal(entry)
    assert await ns.erp.post_journal(entry) == erp_id
    record = await ns.client.get("journalEntry", erp_id)
    lines = record["line"]["items"]
    assert [(line.get("debit"), line.get("credit")) for line in lines] == [(500, None), (None, 500)]
    assert record["subsidiary"]["refName"] and record["currency"]["refName"] == "USD"
    assert await ns.erp.reverse_journal(entry.journal_entry_id) is True
    assert await ns.erp.reverse_journal(entry.journal_entry_id) is True  # the same reversal again
    assert await ns.erp.reverse_journal("JE-never") is False
    journals = await ns.admin.records("journalEntry")
    assert len(journals) == 2
    reversal = next(j for j in journals if j["externalId"] == f"{entry.journal_entry_id}:reversal")
    assert [(x.get("debit"), x.get("credit")) for x in reversal["line"]] == [(None, 500), (500, None)]
    assert reversal["tranDate"] == record["tranDate"]


async def test_unbalanced_journal_and_bad_reference_are_validation_errors(ns: NetSuite) -> None:
    entry = journal()
    bad = entry.model_copy(
        update={
            "journal_entry_id": "JE-bad",
            "lines": [*entry.lines, JournalLine(account="4000 Services revenue", debit=usd("0"), credit=usd("1"))],
        }
    )
    with pytest.raises(VendorValidationError) as caught:
        await ns.erp.post_journal(bad)
    assert caught.value.vendor_code == "USER_ERROR" and not caught.value.retryable
    unknown = entry.model_copy(
        update={
            "journal_entry_id": "JE-acct",
            "lines": [
                JournalLine(account="9999 Nowhere", debit=usd("1"), credit=usd("0")),
                JournalLine(account="4000 Services revenue", debit=usd("0"), credit=usd("1")),
            ],
        }
    )
    with pytest.raises(VendorValidationError):
        await ns.erp.post_journal(unknown)


async def test_locked_period_refuses_postings(sf: Salesforce, ns: NetSuite) -> None:
    customer, order = await provisioned(ns, await engagement(sf.crm))
    periods = [
        p
        for p in await ns.admin.records("accountingPeriod")
        if p.get("startDate") == "2026-03-01" and not p.get("isQuarter") and not p.get("isYear")
    ]
    await ns.client.patch("accountingPeriod", periods[0]["id"], {"arLocked": True})
    with pytest.raises(PeriodLockedError) as caught:
        await ns.erp.post_invoice(invoice(), customer, order)
    assert caught.value.vendor_code == "PERIOD_LOCKED" and not caught.value.retryable
    await ns.client.patch("accountingPeriod", periods[0]["id"], {"allLocked": True})
    with pytest.raises(PeriodLockedError):
        await ns.erp.post_journal(journal())


async def test_concurrency_429_outage_and_token_expiry(sf: Salesforce, ns: NetSuite) -> None:
    eng = await engagement(sf.crm)
    await ns.erp.upsert_customer(eng, "engagement-1:customer")  # a live token first
    await ns.admin.faults(throttle_burst=1, retry_after_s=3)
    with pytest.raises(RateLimitedError) as caught:
        await ns.erp.upsert_customer(eng, "engagement-1:customer")
    assert caught.value.status == 429 and caught.value.retry_after == 3
    assert caught.value.vendor_code == "CONCURRENCY_LIMIT_EXCEEDED" and caught.value.retryable
    await ns.admin.faults(outage_seconds=20)
    with pytest.raises(UnavailableError) as outage:
        await ns.erp.invoice_status("INV-x")
    assert outage.value.status == 503 and (outage.value.retry_after or 0) > 0
    await ns.admin.clear_faults()
    await ns.admin.faults(outage_seconds=0)
    old = ns.client.auth.token.access_token if ns.client.auth.token else None
    await ns.admin.expire_tokens()
    assert await ns.erp.invoice_status("INV-x") is None  # refreshed on 401 INVALID_LOGIN, then served
    assert ns.client.auth.token is not None and ns.client.auth.token.access_token != old


async def test_suiteql_pages_by_offset(ns: NetSuite) -> None:
    rows = [row async for row in ns.client.suiteql("SELECT id, acctnumber FROM account ORDER BY id", page_size=3)]
    assert len(rows) == len(await ns.admin.records("account")) >= 10
    assert len({row["id"] for row in rows}) == len(rows)


async def test_router_sends_each_entity_to_its_instance(tmp_path: Path, sf: Salesforce, ns: NetSuite) -> None:
    apac = await make_netsuite(tmp_path, "apac")
    try:
        router = ErpRouter(
            {"default": erp_connection(ns.client), "apac": erp_connection(apac.client)},
            {"JP01": "apac"},
            default="default",
        )
        eng = await engagement(sf.crm, "006Dd0000000003IAA")
        customer = await router.for_entity("JP01").erp.upsert_customer(eng, "engagement-3:customer")
        assert (await apac.client.get("customer", customer))["currency"]["refName"] == "JPY"
        assert await ns.client.get_by_external_id("customer", "engagement-3:customer") is None
        with pytest.raises(ConfigurationError):
            ErpRouter({"default": erp_connection(ns.client)}, {}, default=None).for_entity("US01")
    finally:
        await apac.client.aclose()
        await apac.admin.aclose()
        apac.admin.app.store.close()


def test_amounts_are_sent_as_exact_strings() -> None:
    from connectors.netsuite.erp import _amount

    assert _amount(usd("0.125")) == "0.13"
    assert _amount(usd("1999.5", "JPY")) == "2000"
    assert Decimal(_amount(usd("10"))) == Decimal("10.00")


async def test_an_order_retried_after_its_cancel_is_open_again(sf: Salesforce, ns: NetSuite) -> None:
    """A saga undo closes the order's lines (its status is read-only in NetSuite); the retried
    provisioning upserts it with `?replace=item`, so its lines are open again and not doubled."""
    eng = await engagement(sf.crm)
    _customer, order = await provisioned(ns, eng)
    assert await ns.erp.cancel_sales_order("engagement-1:sales-order") is True
    closed = await ns.client.get("salesOrder", order)
    assert closed["status"]["refName"] == "Closed" and all(x["isClosed"] for x in closed["item"]["items"])
    assert await provisioned(ns, eng) == (_customer, order)
    reopened = await ns.client.get("salesOrder", order)
    assert reopened["status"]["refName"] == "Pending Billing"
    assert len(reopened["item"]["items"]) == len(eng.lines) and not any(
        x.get("isClosed") for x in reopened["item"]["items"]
    )
    assert {x["item"]["refName"] for x in reopened["item"]["items"]} <= {"IMPL-FF", "CONS-TM", "MS-DEL", "RET-MS"}
