"""Receivables read in bulk from the NetSuite simulator: receipts applied to d2r invoices and
d2r invoices still open past their due date (what the month-end batch and the daily sweep use)."""

from __future__ import annotations

from datetime import date

from connectors.netsuite.receivables import NetSuiteReceivables
from tests.connectors.conftest import OPP_US, NetSuite, Salesforce, engagement, invoice, usd
from tests.connectors.test_netsuite_erp import provisioned


async def test_receipts_and_open_items(sf: Salesforce, ns: NetSuite) -> None:
    customer, order = await provisioned(ns, await engagement(sf.crm))
    paid = invoice("INV-paid", on=date(2026, 3, 31), net="1000.00", tax="200.00")
    part = invoice("INV-part", on=date(2026, 3, 31), net="500.00")
    paid_id = await ns.erp.post_invoice(paid, customer, order)
    part_id = await ns.erp.post_invoice(part, customer, order)
    # one customer payment settles the first invoice and part of the second
    payment_id = await ns.client.create(
        "customerPayment",
        {
            "customer": {"id": customer},
            "tranDate": "2026-04-20",
            "currency": {"refName": "USD"},
            "subsidiary": {"externalId": "US01"},
            "apply": {
                "items": [
                    {"doc": {"id": paid_id}, "amount": 1200, "apply": True},
                    {"doc": {"id": part_id}, "amount": 200, "apply": True},
                ]
            },
        },
    )
    receivables = NetSuiteReceivables(ns.client)

    receipts = await receivables.receipts(customer, date(2026, 4, 1), date(2026, 4, 30))
    assert sorted((r.invoice_id, r.amount, r.received_on) for r in receipts) == [
        ("INV-paid", usd("1200"), date(2026, 4, 20)),
        ("INV-part", usd("200"), date(2026, 4, 20)),
    ]
    assert {r.payment_id for r in receipts} == {f"{payment_id}:{paid_id}", f"{payment_id}:{part_id}"}
    assert sorted(str(r.amount.amount) for r in receipts) == ["1200.00", "200.00"]  # minor units, not 1200.0
    assert await receivables.receipts(customer, date(2026, 5, 1), date(2026, 5, 31)) == []
    # a customer with several deals: only this deal's invoices
    assert len(await receivables.receipts(customer, date(2026, 4, 1), date(2026, 4, 30), OPP_US)) == 2
    assert await receivables.receipts(customer, date(2026, 4, 1), date(2026, 4, 30), "006OTHER0000000AAA") == []

    subsidiary = await receivables.subsidiary_id("US01")
    assert subsidiary is not None
    # both fell due on 30 April; only the partly paid one is still open
    open_items = await receivables.fell_due(subsidiary, date(2026, 4, 30), date(2026, 4, 30))
    assert [(i.invoice_id, i.amount_remaining, i.opportunity_id) for i in open_items] == [
        ("INV-part", usd("300"), OPP_US)
    ]
    assert await receivables.fell_due(subsidiary, date(2026, 5, 1), date(2026, 5, 31)) == []
