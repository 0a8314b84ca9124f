"""Receivables as NetSuite holds them, read in bulk for the month-end and daily batches:
cash applied to d2r's invoices (customer payments and their `apply` lines), and d2r
invoices still open past their due date.

SuiteQL over the Records Catalog: a payment's customer is `transaction.entity`, an
invoice's open amount `foreignamountunpaid` (in its currency), its subsidiary lives on the
main line (`transactionline.mainline = 'T'`), dates go out through TO_DATE and come back
in the account's date format."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.dates import to_date_literal
from domain.money import Money
from domain.system_records import OpenItem, Receipt


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ref_name(value: Any) -> str | None:
    return value.get("refName") if isinstance(value, dict) else None


class NetSuiteReceivables:
    def __init__(self, client: NetSuiteClient, concurrency: int = 8, page_size: int = 1000) -> None:
        self._ns = client
        self._gate = asyncio.Semaphore(concurrency)
        self._page = page_size

    async def receipts(
        self, customer_id: str, since: date, through: date, opportunity_id: str | None = None
    ) -> list[Receipt]:
        """Every part of a customer payment dated `since`..`through` that settles an invoice
        d2r issued (invoices without a d2r externalId are someone else's) — of one
        engagement's opportunity when given (a customer may have several deals)."""
        query = (
            f"SELECT id FROM transaction WHERE type = 'CustPymt' AND entity = {int(customer_id)} "
            f"AND trandate >= {to_date_literal(since)} AND trandate <= {to_date_literal(through)} "
            "ORDER BY id"
        )
        ids = [str(row["id"]) async for row in self._ns.suiteql(query, page_size=self._page)]

        async def one(payment_id: str) -> dict[str, Any]:
            async with self._gate:
                return await self._ns.get("customerPayment", payment_id)

        payments = await asyncio.gather(*(one(i) for i in ids))
        applied = [
            (p, item)
            for p in payments
            for item in (p.get("apply") or {}).get("items", [])
            if item.get("apply", True) and isinstance(item.get("doc"), dict)
        ]
        invoice_ids = sorted({str(item["doc"]["id"]) for _, item in applied})
        external = await self._external_ids(invoice_ids, opportunity_id)
        out = []
        for payment, item in applied:
            erp_invoice_id = str(item["doc"]["id"])
            invoice_id = external.get(erp_invoice_id)
            if not invoice_id:
                continue
            out.append(
                Receipt(
                    payment_id=f"{payment['id']}:{erp_invoice_id}",
                    invoice_id=invoice_id,
                    erp_invoice_id=erp_invoice_id,
                    # NetSuite answers with JSON numbers: back to the currency's minor units
                    amount=Money(
                        amount=Decimal(str(item.get("amount") or 0)), currency=_ref_name(payment.get("currency")) or ""
                    ).rounded(),
                    received_on=date.fromisoformat(str(payment["tranDate"])[:10]),
                )
            )
        return out

    async def _external_ids(self, erp_invoice_ids: list[str], opportunity_id: str | None) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(erp_invoice_ids), 500):
            chunk = ", ".join(str(int(i)) for i in erp_invoice_ids[start : start + 500])
            query = (
                "SELECT id, externalid, custbody_d2r_opportunity_id FROM transaction "
                f"WHERE type = 'CustInvc' AND id IN ({chunk})"
            )
            async for row in self._ns.suiteql(query, page_size=self._page):
                if opportunity_id is not None and row.get("custbody_d2r_opportunity_id") != opportunity_id:
                    continue
                if row.get("externalid"):
                    found[str(row["id"])] = str(row["externalid"])
        return found

    async def fell_due(
        self, subsidiary_id: str, due_from: date, due_to: date, opportunity_ids: Sequence[str] = ()
    ) -> list[OpenItem]:
        """d2r invoices of the subsidiary due `due_from`..`due_to` with money still open (of
        these opportunities only, when given)."""
        only = (
            f"AND t.custbody_d2r_opportunity_id IN ({', '.join(_quote(o) for o in opportunity_ids)}) "
            if opportunity_ids
            else ""
        )
        query = (
            "SELECT t.id, t.externalid, t.duedate, t.foreignamountunpaid, t.currency, t.custbody_d2r_opportunity_id "
            "FROM transaction t INNER JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'T' "
            f"WHERE t.type = 'CustInvc' AND tl.subsidiary = {int(subsidiary_id)} {only}"
            f"AND t.duedate >= {to_date_literal(due_from)} AND t.duedate <= {to_date_literal(due_to)} "
            "AND t.foreignamountunpaid > 0 ORDER BY t.id"
        )
        items = []
        currencies: dict[str, str] = {}
        async for row in self._ns.suiteql(query, page_size=self._page):
            opportunity = row.get("custbody_d2r_opportunity_id")
            if not opportunity or not row.get("externalid"):
                continue
            currency = await self._currency_code(str(row.get("currency") or ""), currencies)
            items.append(
                OpenItem(
                    invoice_id=str(row["externalid"]),
                    erp_invoice_id=str(row["id"]),
                    opportunity_id=str(opportunity),
                    due_date=self._ns.date(row["duedate"]),
                    amount_remaining=Money(
                        amount=Decimal(str(row.get("foreignamountunpaid") or 0)), currency=currency
                    ).rounded(),
                )
            )
        return items

    async def _currency_code(self, currency_id: str, cache: dict[str, str]) -> str:
        if currency_id not in cache:
            record = await self._ns.get("currency", currency_id) if currency_id else {}
            cache[currency_id] = str(record.get("symbol") or record.get("name") or currency_id)
        return cache[currency_id]

    async def open_items_due(
        self, legal_entity: str, due_from: date, due_to: date, opportunity_ids: Sequence[str] | None = None
    ) -> list[OpenItem] | None:
        """`fell_due` for the legal entity's subsidiary; None when this account has none."""
        subsidiary = await self.subsidiary_id(legal_entity)
        if subsidiary is None:
            return None
        if opportunity_ids is None:
            return await self.fell_due(subsidiary, due_from, due_to)
        found: list[OpenItem] = []
        wanted = sorted(set(opportunity_ids))
        for start in range(0, len(wanted), 500):
            found += await self.fell_due(subsidiary, due_from, due_to, wanted[start : start + 500])
        return found

    async def subsidiary_id(self, legal_entity: str) -> str | None:
        return await self._ns.subsidiary_id(legal_entity)
