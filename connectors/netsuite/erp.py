"""ERP on NetSuite: customers and sales orders, routed to the legal entity's instance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.errors import NotFoundError
from connectors.netsuite.client import SYSTEM, NetSuiteClient
from connectors.netsuite.customers import agreement
from domain.deal import BillingModel, ContractLine, Engagement
from domain.master_data import customer_fields
from domain.model import CreditMemo, Invoice, JournalEntry, Lineage, SourceKind
from domain.money import Money
from domain.system_records import InvoiceLineage, InvoiceStatus


def _amount(money: Money) -> str:
    # NetSuite takes plain JSON numbers; a string keeps the Decimal exact on the wire.
    return str(money.rounded().amount)


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _ref_name(value: Any) -> str | None:
    return value.get("refName") if isinstance(value, dict) else None


def _lineage(lineage: Lineage) -> dict[str, Any]:
    """The lineage keys every d2r document carries, as NetSuite custom body fields."""
    return {
        "custbody_d2r_opportunity_id": lineage.opportunity_id,
        "custbody_d2r_crm_customer_id": lineage.customer_id,
        "custbody_d2r_project_id": lineage.project_id,
        "custbody_d2r_contract_id": lineage.contract_id,
        "custbody_d2r_legal_entity": lineage.legal_entity,
    }


# The service item each billing model sells (the items' externalId is the product code).
DEFAULT_ITEMS = {
    BillingModel.FIXED_FEE: "IMPL-FF",
    BillingModel.TIME_AND_MATERIALS: "CONS-TM",
    BillingModel.MILESTONE: "MS-DEL",
    BillingModel.RETAINER: "RET-MS",
}
# The service item an invoice line bills, by what it bills (NetSuite requires an item on
# every invoice and credit memo line too); credit lines take their invoice line's item.
INVOICE_ITEMS = {
    SourceKind.TIME: "CONS-TM",
    SourceKind.EXPENSE: "EXP-REIMB",
    SourceKind.MILESTONE: "MS-DEL",
    SourceKind.RETAINER: "RET-MS",
}


def _order_lines(lines: list[ContractLine]) -> dict[str, Any]:
    """Sales-order lines; NetSuite requires an item on each."""
    return {
        "items": [
            {
                "item": {"externalId": DEFAULT_ITEMS[line.billing_model]},
                "description": f"{line.name} ({line.billing_model.value}, {line.revenue_method.value})",
                "quantity": 1,
                "rate": _amount(line.amount),
                "amount": _amount(line.amount),
                "custcol_d2r_contract_line_id": line.line_id,
                "custcol_d2r_billing_model": line.billing_model.value,
            }
            for line in lines
        ]
    }


def _closed_lines(order: dict[str, Any]) -> dict[str, Any]:
    """A sales order closes by closing its lines (its `status` is read-only)."""
    lines = (order.get("item") or {}).get("items") or []
    return {"item": {"items": [{"line": line["line"], "isClosed": True} for line in lines if "line" in line]}}


def default_account_map(account: str) -> dict[str, str]:
    """d2r's ledger accounts read "1200 Accounts receivable": the number is the NetSuite
    account's externalId."""
    return {"externalId": account.split()[0]}


class NetSuiteErp:
    """One NetSuite account; `ErpRouter` picks the instance by legal entity.

    Every document is written with `PUT <type>/eid:<d2r id>`, so a retried activity
    updates the record it already wrote instead of posting a second one.
    """

    def __init__(self, client: NetSuiteClient, account_map: dict[str, dict[str, str]] | None = None) -> None:
        self._ns = client
        self._accounts = account_map or {}

    def _account(self, account: str) -> dict[str, str]:
        return self._accounts.get(account) or default_account_map(account)

    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str:
        customer = engagement.customer
        body: dict[str, Any] = {
            "companyName": customer.name,
            "isPerson": False,
            "subsidiary": {"externalId": engagement.legal_entity},
            "currency": {"refName": engagement.currency},
            "custentity_d2r_crm_account_id": customer.customer_id,
        }
        if customer.parent_id:
            body["custentity_d2r_crm_parent_id"] = customer.parent_id
        if customer.tax_id:
            body["vatRegNumber"] = customer.tax_id
        body.update(agreement(customer_fields(customer)))  # master data: what the CRM and the ERP now agree on
        return await self._ns.upsert("customer", external_id, body)

    async def create_sales_order(
        self, engagement: Engagement, customer_id: str, project_id: str, external_id: str
    ) -> str:
        body = {
            "entity": {"id": customer_id},
            "subsidiary": {"externalId": engagement.legal_entity},
            "currency": {"refName": engagement.currency},
            "tranDate": engagement.close_date.isoformat(),
            "memo": engagement.name[:200],
            "custbody_d2r_opportunity_id": engagement.opportunity_id,
            "custbody_d2r_project_id": project_id,
            "custbody_d2r_legal_entity": engagement.legal_entity,
            "custbody_d2r_billing_terms": engagement.billing_terms,
            # Replaced whole (`?replace=item`): a retry after the saga cancelled the order
            # puts open lines back instead of billing from closed ones.
            "item": _order_lines(engagement.lines),
            "custbody_d2r_cancelled": False,
        }
        return await self._ns.upsert("salesOrder", external_id, body)

    async def cancel_sales_order(self, external_id: str) -> bool:
        """Compensation: close the order so nothing bills from it. Safe to repeat."""
        record = await self._ns.get_by_external_id("salesOrder", external_id)
        if record is None:
            return False
        await self._ns.patch("salesOrder", str(record["id"]), {**_closed_lines(record), "custbody_d2r_cancelled": True})
        return True

    async def _order_id(self, external_id: str) -> str:
        record = await self._ns.get_by_external_id("salesOrder", external_id)
        if record is None:
            raise NotFoundError(
                f"sales order {external_id} does not exist", system=SYSTEM, status=404, vendor_code="NONEXISTENT_ID"
            )
        return str(record["id"])

    async def update_sales_order_lines(self, external_id: str, lines: list[ContractLine]) -> None:
        """Replace the order's lines (an amendment, or its undo): sent with
        `?replace=item`, so sending the same lines twice is one state."""
        await self._ns.patch("salesOrder", await self._order_id(external_id), {"item": _order_lines(lines)})

    async def close_sales_order(self, external_id: str) -> None:
        """The engagement is over: nothing more bills from the order. Safe to repeat."""
        record = await self._ns.get_by_external_id("salesOrder", external_id)
        if record is None:
            raise NotFoundError(
                f"sales order {external_id} does not exist", system=SYSTEM, status=404, vendor_code="NONEXISTENT_ID"
            )
        await self._ns.patch("salesOrder", str(record["id"]), _closed_lines(record))

    async def post_invoice(self, invoice: Invoice, customer_id: str, sales_order_id: str) -> str:
        events = sorted({line.billing_event_id for line in invoice.lines})
        body: dict[str, Any] = {
            "entity": {"id": customer_id},
            "subsidiary": {"externalId": invoice.lineage.legal_entity},
            "currency": {"refName": invoice.currency},
            "tranDate": invoice.invoice_date.isoformat(),
            "dueDate": invoice.due_date.isoformat(),
            "memo": f"d2r invoice {invoice.invoice_id} for {invoice.period}"[:200],
            "otherRefNum": invoice.invoice_id[:45],
            **_lineage(invoice.lineage),
            "custbody_d2r_invoice_id": invoice.invoice_id,
            "custbody_d2r_sales_order_id": sales_order_id,
            "custbody_d2r_period": str(invoice.period),
            "custbody_d2r_billing_event_id": ",".join(events),
            "item": {
                "items": [
                    {
                        "item": {"externalId": INVOICE_ITEMS[line.kind]},
                        "description": line.description[:4000],
                        "quantity": 1,
                        "rate": _amount(line.net),
                        "amount": _amount(line.net),
                        "tax1Amt": _amount(line.tax.amount),
                        "taxCode": f"{line.tax.jurisdiction}:{line.tax.treatment.value}",
                        "custcol_d2r_invoice_line_id": line.invoice_line_id,
                        "custcol_d2r_contract_line_id": line.contract_line_id,
                        "custcol_d2r_billing_event_id": line.billing_event_id,
                        "custcol_d2r_kind": line.kind.value,
                        "custcol_d2r_tax_rate": str(line.tax.rate),
                    }
                    for line in invoice.lines
                ]
            },
        }
        return await self._ns.upsert("invoice", invoice.invoice_id, body)

    async def post_credit_memo(self, memo: CreditMemo, customer_id: str, erp_invoice_id: str) -> str:
        """A credit memo transformed from the invoice (so it is created from, and applied to,
        it). A transform is a POST, so look the memo up by external id first: a retry after
        a lost response finds the memo and updates it instead of crediting twice."""
        items, fallback = await self._invoice_items(erp_invoice_id)
        body: dict[str, Any] = {
            "tranDate": memo.memo_date.isoformat(),
            "memo": f"{memo.reason} (d2r credit memo {memo.credit_memo_id})"[:200],
            **_lineage(memo.lineage),
            "custbody_d2r_credit_memo_id": memo.credit_memo_id,
            "custbody_d2r_invoice_id": memo.invoice_id,
            "item": {
                "items": [
                    {
                        "item": items.get(line.invoice_line_id) or fallback,
                        "description": f"Credit for {line.invoice_line_id}"[:4000],
                        "quantity": 1,
                        "rate": _amount(line.net),
                        "amount": _amount(line.net),
                        "tax1Amt": _amount(line.tax),
                        "custcol_d2r_credit_memo_line_id": line.credit_memo_line_id,
                        "custcol_d2r_invoice_line_id": line.invoice_line_id,
                        "custcol_d2r_contract_line_id": line.contract_line_id,
                        "custcol_d2r_price_concession": line.price_concession,
                    }
                    for line in memo.lines
                ]
            },
        }
        existing = await self._ns.get_by_external_id("creditMemo", memo.credit_memo_id)
        if existing is not None:
            await self._ns.patch("creditMemo", str(existing["id"]), body)
            return str(existing["id"])
        return await self._ns.transform(
            "invoice",
            erp_invoice_id,
            "creditMemo",
            {**body, "externalId": memo.credit_memo_id, "entity": {"id": customer_id}},
        )

    async def _invoice_items(self, erp_invoice_id: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """The item of each line of the invoice, by d2r's invoice line id (and its first)."""
        invoice = await self._ns.get("invoice", erp_invoice_id)
        found: dict[str, dict[str, str]] = {}
        for line in (invoice.get("item") or {}).get("items", []):
            if isinstance(line.get("item"), dict) and line["item"].get("id"):
                found.setdefault(str(line.get("custcol_d2r_invoice_line_id")), {"id": str(line["item"]["id"])})
        fallback = next(iter(found.values()), {"externalId": INVOICE_ITEMS[SourceKind.TIME]})
        return found, fallback

    async def void_credit_memo(self, credit_memo_id: str) -> bool:
        """Undo a credit memo: delete it, which also unapplies it from its invoice.
        False when there is no such memo (never posted, or already undone)."""
        record = await self._ns.get_by_external_id("creditMemo", credit_memo_id)
        if record is None:
            return False
        try:
            await self._ns.delete("creditMemo", str(record["id"]))
        except NotFoundError:
            return False
        return True

    async def post_journal(self, journal: JournalEntry) -> str:
        lines = []
        for line in journal.lines:
            entry: dict[str, Any] = {"account": self._account(line.account), "memo": line.memo[:4000]}
            if line.debit.amount:
                entry["debit"] = _amount(line.debit)
            if line.credit.amount:
                entry["credit"] = _amount(line.credit)
            lines.append(entry)
        return await self._ns.upsert(
            "journalEntry",
            journal.journal_entry_id,
            {
                "subsidiary": {"externalId": journal.legal_entity},
                "currency": {"refName": journal.currency},
                "tranDate": journal.entry_date.isoformat(),
                "memo": journal.memo[:200],
                "approved": True,
                **_lineage(journal.lineage),
                "custbody_d2r_journal_entry_id": journal.journal_entry_id,
                "custbody_d2r_period": str(journal.period),
                "line": {"items": lines},
            },
        )

    async def reverse_journal(self, journal_entry_id: str) -> bool:
        """Undo a journal with a reversing entry (debits and credits swapped, same date),
        upserted under its own external id so repeating the undo reverses once.
        False when the journal was never posted."""
        original = await self._ns.get_by_external_id("journalEntry", journal_entry_id)
        if original is None:
            return False
        items = (original.get("line") or {}).get("items", [])
        reversed_lines = [
            {
                "account": {"id": line["account"]["id"]},
                "memo": f"Reversal: {line.get('memo') or ''}"[:4000],
                **({"debit": str(line["credit"])} if line.get("credit") else {}),
                **({"credit": str(line["debit"])} if line.get("debit") else {}),
            }
            for line in items
        ]
        custom = {k: v for k, v in original.items() if k.startswith("custbody_d2r_")}
        await self._ns.upsert(
            "journalEntry",
            f"{journal_entry_id}:reversal",
            {
                "subsidiary": {"id": original["subsidiary"]["id"]},
                "currency": {"id": original["currency"]["id"]},
                "tranDate": original["tranDate"],
                "memo": f"Reversal of {original.get('tranId') or journal_entry_id}"[:200],
                "approved": True,
                **custom,
                "custbody_d2r_journal_entry_id": f"{journal_entry_id}:reversal",
                "custbody_d2r_reverses": journal_entry_id,
                "line": {"items": reversed_lines},
            },
        )
        return True

    async def invoice_status(self, invoice_id: str) -> InvoiceStatus | None:
        record = await self._ns.get_by_external_id("invoice", invoice_id)
        if record is None:
            return None
        currency = _ref_name(record.get("currency")) or ""
        return InvoiceStatus(
            invoice_id=invoice_id,
            erp_invoice_id=str(record["id"]),
            status=_ref_name(record.get("status")) or str(record.get("status") or "Open"),
            amount_paid=Money(amount=_number(record.get("amountPaid")), currency=currency),
            amount_remaining=Money(amount=_number(record.get("amountRemaining")), currency=currency),
        )

    async def invoice_lineage(self, erp_invoice_id: str) -> InvoiceLineage | None:
        try:
            record = await self._ns.get("invoice", erp_invoice_id)
        except NotFoundError:
            return None
        opportunity_id = record.get("custbody_d2r_opportunity_id")
        if not opportunity_id or not record.get("externalId"):
            return None  # not an invoice d2r issued
        return InvoiceLineage(
            invoice_id=str(record["externalId"]), opportunity_id=str(opportunity_id), erp_invoice_id=str(record["id"])
        )
