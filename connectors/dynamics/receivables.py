"""Receivables as D365 holds them, for the month-end and daily batches: payments settled
against d2r's invoices (`CustomerSettlements`), and d2r invoices still open past their due
date (`CustomerTransactions`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from connectors.dynamics.client import DynamicsClient, literal
from connectors.dynamics.keys import company_of, qualified, split
from domain.money import Money
from domain.system_records import OpenItem, Receipt

IN_CHUNK = 15  # values per `or` chain (D365 speaks OData 4.0: no `in`)


def any_of(field: str, values: list[str]) -> str:
    return "(" + " or ".join(f"{field} eq {literal(v)}" for v in values) + ")"


class DynamicsReceivables:
    def __init__(self, client: DynamicsClient) -> None:
        self._c = client

    async def receipts(
        self, customer_id: str, since: date, through: date, opportunity_id: str | None = None
    ) -> list[Receipt]:
        """Every payment settlement dated `since`..`through` of the customer against an
        invoice d2r issued (invoices without a d2r reference are someone else's) — of one
        engagement's opportunity when given."""
        company, account = split(customer_id)
        settlements = await self._c.all(
            "CustomerSettlements",
            f"dataAreaId eq {literal(company)} and CustomerAccount eq {literal(account)} "
            "and OffsetTransactionType eq Microsoft.Dynamics.DataEntities.CustTransType'Payment' "
            f"and SettlementDate ge {since.isoformat()} and SettlementDate le {through.isoformat()}",
            orderby="SettlementId",
        )
        invoices = await self._d2r_invoices(company, sorted({str(s["InvoiceId"]) for s in settlements}))
        out = []
        for s in settlements:
            found = invoices.get(str(s["InvoiceId"]))
            if found is None or (opportunity_id is not None and found[1] != opportunity_id):
                continue
            erp_invoice_id = qualified(company, str(s["InvoiceId"]))
            out.append(
                Receipt(
                    payment_id=f"{qualified(company, str(s['OffsetVoucher']))}:{s['InvoiceId']}",
                    invoice_id=found[0],
                    erp_invoice_id=erp_invoice_id,
                    amount=Money(amount=Decimal(str(s["SettledAmountCur"])), currency=str(s["CurrencyCode"])).rounded(),
                    received_on=date.fromisoformat(str(s["SettlementDate"])[:10]),
                )
            )
        return out

    async def _d2r_invoices(self, company: str, invoice_ids: list[str]) -> dict[str, tuple[str, str]]:
        """ERP invoice number -> (d2r invoice id, opportunity) for the ones d2r issued."""
        found: dict[str, tuple[str, str]] = {}
        for at in range(0, len(invoice_ids), IN_CHUNK):
            rows = await self._c.all(
                "FreeTextInvoiceHeaders",
                f"dataAreaId eq {literal(company)} and {any_of('InvoiceId', invoice_ids[at : at + IN_CHUNK])}",
                select=("InvoiceId", "D2RReference", "D2ROpportunityId"),
            )
            for row in rows:
                if row.get("D2RReference") and row.get("D2ROpportunityId"):
                    found[str(row["InvoiceId"])] = (str(row["D2RReference"]), str(row["D2ROpportunityId"]))
        return found

    async def fell_due(self, subsidiary_id: str, due_from: date, due_to: date) -> list[OpenItem]:
        """d2r invoices of the company (`subsidiary_id` is its dataAreaId) due
        `due_from`..`due_to` with money still open."""
        company = subsidiary_id
        rows = await self._c.all(
            "CustomerTransactions",
            f"dataAreaId eq {literal(company)} "
            "and TransactionType eq Microsoft.Dynamics.DataEntities.CustTransType'Invoice' "
            f"and DueDate ge {due_from.isoformat()} and DueDate le {due_to.isoformat()} and RemainingAmountCur gt 0",
            orderby="Voucher",
        )
        return [
            OpenItem(
                invoice_id=str(row["D2RReference"]),
                erp_invoice_id=qualified(company, str(row["Invoice"])),
                opportunity_id=str(row["D2ROpportunityId"]),
                due_date=date.fromisoformat(str(row["DueDate"])[:10]),
                amount_remaining=Money(
                    amount=Decimal(str(row["RemainingAmountCur"])), currency=str(row["CurrencyCode"])
                ).rounded(),
            )
            for row in rows
            if row.get("D2RReference") and row.get("D2ROpportunityId")
        ]

    async def open_items_due(
        self, legal_entity: str, due_from: date, due_to: date, opportunity_ids: Sequence[str] | None = None
    ) -> list[OpenItem] | None:
        """`fell_due` for the legal entity's company (of these opportunities only, when
        given: filtered here, not yet in the OData query); None when this environment has none."""
        company = await self.subsidiary_id(legal_entity)
        if company is None:
            return None
        items = await self.fell_due(company, due_from, due_to)
        if opportunity_ids is None:
            return items
        wanted = set(opportunity_ids)
        return [i for i in items if i.opportunity_id in wanted]

    async def subsidiary_id(self, legal_entity: str) -> str | None:
        """The company (dataAreaId) of the legal entity, if this environment has it."""
        company = company_of(legal_entity)
        found = await self._c.get("LegalEntities", f"(LegalEntityId={literal(legal_entity.upper())})")
        return company if found is not None else None
