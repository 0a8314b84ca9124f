"""The ERP port on Dynamics 365 Finance: customers, sales orders, free-text invoices and
credit notes, general journals, invoice status and lineage.

Every create is idempotent without an upsert: the record's key is derived from d2r's id
(`keys.natural_key`), the connector reads that key before it creates, and a create that
meets the key anyway (a lost response, a concurrent attempt) reads the record instead.
Documents (a header, its lines, the posting) go in one `$batch` change set, so a document
exists whole or not at all: finding the header means the document is complete.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connectors.dynamics.batch import Request
from connectors.dynamics.client import ACTIONS, SYSTEM, AlreadyExistsError, DynamicsClient, key, literal
from connectors.dynamics.customers import agreement
from connectors.dynamics.keys import company_of, natural_key, qualified, split
from connectors.errors import DuplicateError, NotFoundError, VendorValidationError
from domain.deal import ContractLine, Engagement
from domain.master_data import customer_fields
from domain.model import CreditMemo, Invoice, JournalEntry, Lineage
from domain.money import Money
from domain.system_records import InvoiceLineage, InvoiceStatus
from domain.tax import TaxTreatment

# the service item a contract line is sold as, by billing model
ITEMS = {"time_and_materials": "CONS-TM", "fixed_fee": "IMPL-FF", "milestone": "MS-DEL", "retainer": "RET-MS"}
REVENUE_ACCOUNT = "4000"
CUSTOMER_GROUP = "30"
_TREATMENT = {
    TaxTreatment.STANDARD: "S",
    TaxTreatment.REVERSE_CHARGE: "R",
    TaxTreatment.EXEMPT: "E",
    TaxTreatment.OUT_OF_SCOPE: "O",
}


def amount(money: Money) -> str:
    """Money on the wire: a string of the Decimal rounded to the currency's minor unit."""
    return str(money.rounded().amount)


def number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def account_number(account: str) -> str:
    """d2r's ledger accounts read "4000 Services revenue"; D365's main account is the number."""
    return account.split()[0]


def lineage_fields(lineage: Lineage) -> dict[str, Any]:
    return {"D2ROpportunityId": lineage.opportunity_id, "D2RProjectId": lineage.project_id[:30]}


def tax_group_code(jurisdiction: str, treatment: TaxTreatment, rate: Decimal) -> str:
    """One sales tax group per (country, treatment, rate): `GBS20`, `DER0`, `USO0`."""
    percent = format((rate * 100).normalize(), "f")
    return f"{jurisdiction[:2].upper()}{_TREATMENT[treatment]}{percent}"[:10]


class DynamicsErp:
    """One D365 environment; its companies are the legal entities routed to it."""

    def __init__(self, client: DynamicsClient) -> None:
        self._c = client
        self._tax_groups: set[tuple[str, str]] = set()

    @property
    def client(self) -> DynamicsClient:
        return self._c

    # -- customers -----------------------------------------------------------------------------
    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str:
        customer = engagement.customer
        company = company_of(engagement.legal_entity)
        account = natural_key("C-", customer.customer_id)
        fields: dict[str, Any] = {
            "OrganizationName": customer.name[:100],
            "SalesCurrencyCode": engagement.currency,
            "D2RReference": external_id,
            "D2RCrmAccountId": customer.customer_id,
        }
        if customer.country:
            fields["AddressCountryRegionId"] = customer.country
        if customer.tax_id:
            fields["TaxExemptNumber"] = customer.tax_id[:25]
        if customer.parent_id:
            fields["D2RParentCustomerAccount"] = natural_key("C-", customer.parent_id)
            fields["D2RCrmParentId"] = customer.parent_id
        fields.update(agreement(customer_fields(customer)))  # master data: what the CRM and the ERP now agree on
        record_key = key(dataAreaId=company, CustomerAccount=account)
        existing = await self._c.get("CustomersV3", record_key)
        if existing is None:
            try:
                await self._c.create(
                    "CustomersV3",
                    {"dataAreaId": company, "CustomerAccount": account, "CustomerGroupId": CUSTOMER_GROUP, **fields},
                )
                return qualified(company, account)
            except AlreadyExistsError:
                existing = await self._c.get("CustomersV3", record_key)
                if existing is None:
                    raise
        self._owned(existing, "D2RCrmAccountId", customer.customer_id, "customer", account)
        changed = {k: v for k, v in fields.items() if existing.get(k) != v}
        if changed:
            await self._c.patch("CustomersV3", record_key, changed, etag=existing.get("@odata.etag"))
        return qualified(company, account)

    @staticmethod
    def _owned(record: dict[str, Any], field: str, expected: str, what: str, number: str) -> None:
        """A record found under d2r's key must be d2r's (or unclaimed, e.g. migrated)."""
        found = record.get(field)
        if found and found != expected:
            raise DuplicateError(
                f"{what} {number} belongs to {found}, not {expected}", system=SYSTEM, vendor_code="KEY_TAKEN"
            )

    # -- sales orders --------------------------------------------------------------------------
    def _order_lines(self, company: str, order: str, lines: list[ContractLine]) -> list[Request]:
        return [
            Request(
                "POST",
                "SalesOrderLines",
                {
                    "dataAreaId": company,
                    "SalesOrderNumber": order,
                    "ItemNumber": ITEMS[line.billing_model.value],
                    "LineDescription": f"{line.name} ({line.billing_model.value}, {line.revenue_method.value})"[:1000],
                    "OrderedSalesQuantity": "1",
                    "SalesPrice": amount(line.amount),
                    "D2RContractLineId": line.line_id[:40],
                },
            )
            for line in lines
        ]

    async def _find_order(self, external_id: str) -> dict[str, Any] | None:
        """By d2r's reference, across companies (the caller may not say which)."""
        return await self._c.first("SalesOrderHeadersV2", f"D2RReference eq {literal(external_id)}")

    async def create_sales_order(
        self, engagement: Engagement, customer_id: str, project_id: str, external_id: str
    ) -> str:
        company, account = split(customer_id)
        order = natural_key("SO-", external_id)
        record_key = key(dataAreaId=company, SalesOrderNumber=order)
        existing = await self._c.get("SalesOrderHeadersV2", record_key)
        if existing is None:
            header = {
                "dataAreaId": company,
                "SalesOrderNumber": order,
                "OrderingCustomerAccountNumber": account,
                "CurrencyCode": engagement.currency,
                "SalesOrderName": engagement.name[:100],
                "RequestedShippingDate": (engagement.contract_start or engagement.close_date).isoformat(),
                "PaymentTermsName": engagement.billing_terms[:10],
                "D2RReference": external_id,
                "D2ROpportunityId": engagement.opportunity_id,
                "D2RProjectId": project_id[:30],
            }
            try:
                await self._c.changeset(
                    [
                        Request("POST", "SalesOrderHeadersV2", header),
                        *self._order_lines(company, order, engagement.lines),
                    ]
                )
            except AlreadyExistsError:
                if await self._c.get("SalesOrderHeadersV2", record_key) is None:
                    raise
            return qualified(company, order)
        self._owned(existing, "D2RReference", external_id, "sales order", order)
        return qualified(company, order)

    async def cancel_sales_order(self, external_id: str) -> bool:
        """Compensation: an order nothing was invoiced from is deleted (with its lines), so a
        later retry of the saga creates it afresh; one already invoiced is cancelled. Safe
        to repeat: False once there is nothing left to undo."""
        order = await self._find_order(external_id)
        if order is None:
            return False
        record_key = key(dataAreaId=order["dataAreaId"], SalesOrderNumber=order["SalesOrderNumber"])
        if order.get("SalesOrderStatus") == "Backorder":
            try:
                await self._c.delete("SalesOrderHeadersV2", record_key)
            except NotFoundError:
                return False
        return True

    async def _order(self, external_id: str) -> dict[str, Any]:
        order = await self._find_order(external_id)
        if order is None:
            raise NotFoundError(f"sales order {external_id} does not exist", system=SYSTEM, status=404)
        return order

    async def update_sales_order_lines(self, external_id: str, lines: list[ContractLine]) -> None:
        """Replace the order's lines in one change set (the old ones go, the new ones come):
        sending the same lines twice leaves one state."""
        order = await self._order(external_id)
        company, number_ = order["dataAreaId"], order["SalesOrderNumber"]
        current = await self._c.all(
            "SalesOrderLines",
            f"dataAreaId eq {literal(company)} and SalesOrderNumber eq {literal(number_)}",
            select=("InventoryLotId", "D2RContractLineId", "SalesPrice"),
        )
        wanted = sorted((line.line_id[:40], line.amount.rounded().amount) for line in lines)
        if sorted((str(r["D2RContractLineId"]), number(r["SalesPrice"])) for r in current) == wanted:
            return
        deletes = [
            Request("DELETE", f"/data/SalesOrderLines{key(dataAreaId=company, InventoryLotId=r['InventoryLotId'])}")
            for r in current
        ]
        await self._c.changeset([*deletes, *self._order_lines(company, number_, lines)])

    async def close_sales_order(self, external_id: str) -> None:
        """The engagement is over: what is not invoiced is cancelled. Safe to repeat."""
        order = await self._order(external_id)
        if order.get("SalesOrderStatus") == "Backorder":
            await self._c.patch(
                "SalesOrderHeadersV2",
                key(dataAreaId=order["dataAreaId"], SalesOrderNumber=order["SalesOrderNumber"]),
                {"SalesOrderStatus": "Canceled"},
                etag=order.get("@odata.etag"),
            )

    # -- invoices and credit notes ---------------------------------------------------------------
    async def _tax_group(self, company: str, jurisdiction: str, treatment: TaxTreatment, rate: Decimal) -> str:
        """The sales tax group for d2r's tax determination, created once if missing: D365
        then computes the same tax (rate x line, half up) d2r did."""
        code = tax_group_code(jurisdiction, treatment, rate)
        if (company, code) in self._tax_groups:
            return code
        record_key = key(dataAreaId=company, TaxGroupCode=code)
        found = await self._c.get("SalesTaxGroups", record_key)
        if found is None:
            try:
                await self._c.create(
                    "SalesTaxGroups",
                    {
                        "dataAreaId": company,
                        "TaxGroupCode": code,
                        "TaxRatePercent": format(rate * 100, "f"),
                        "Description": f"{jurisdiction} {treatment.value} (d2r)",
                    },
                )
            except AlreadyExistsError:
                pass
        elif number(found.get("TaxRatePercent")) != rate * 100:
            raise VendorValidationError(
                f"sales tax group {code} of {company} charges {found.get('TaxRatePercent')} %, not {rate * 100} %",
                system=SYSTEM,
                vendor_code="TAX_GROUP_RATE",
            )
        self._tax_groups.add((company, code))
        return code

    async def _post_document(
        self, company: str, number_: str, header: dict[str, Any], lines: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Header, lines and posting in one change set; the posted header is the answer.
        Found already (a retry, a lost response, a racing attempt): that one is the answer."""
        record_key = key(dataAreaId=company, FreeTextNumber=number_)
        existing = await self._c.get("FreeTextInvoiceHeaders", record_key)
        if existing is None:
            requests = [
                Request("POST", "FreeTextInvoiceHeaders", {"dataAreaId": company, "FreeTextNumber": number_, **header}),
                *[
                    Request("POST", "FreeTextInvoiceLines", {"dataAreaId": company, "FreeTextNumber": number_, **line})
                    for line in lines
                ],
                Request("POST", f"/data/FreeTextInvoiceHeaders{record_key}/{ACTIONS}.post"),
            ]
            try:
                existing = await self._c.changeset_then_get(requests, "FreeTextInvoiceHeaders", record_key)
            except AlreadyExistsError:  # a racing attempt, or one whose answer was lost, wrote it
                existing = await self._c.get("FreeTextInvoiceHeaders", record_key)
            if existing is None:
                raise NotFoundError(f"free-text invoice {number_} vanished after posting", system=SYSTEM)
        self._owned(existing, "D2RReference", header["D2RReference"], "free-text invoice", number_)
        if existing.get("IsPosted") != "Yes":  # written by hand, or by an older run: post it now
            await self._c.changeset([Request("POST", f"/data/FreeTextInvoiceHeaders{record_key}/{ACTIONS}.post")])
            existing = await self._c.get("FreeTextInvoiceHeaders", record_key) or existing
        return existing

    @staticmethod
    def _check_totals(found: dict[str, Any], total: Money, tax: Money, what: str) -> None:
        if (
            number(found.get("TotalInvoiceAmount")) != total.rounded().amount
            or number(found.get("TotalTaxAmount")) != tax.rounded().amount
        ):
            raise VendorValidationError(
                f"{what} {found.get('InvoiceId')} posted {found.get('TotalInvoiceAmount')} "
                f"(tax {found.get('TotalTaxAmount')}) where d2r computed {amount(total)} (tax {amount(tax)})",
                system=SYSTEM,
                vendor_code="TOTALS_DIFFER",
            )

    async def post_invoice(self, invoice: Invoice, customer_id: str, sales_order_id: str) -> str:
        company, account = split(customer_id)
        _, order = split(sales_order_id)
        lines = []
        for line in invoice.lines:
            group = await self._tax_group(company, line.tax.jurisdiction, line.tax.treatment, line.tax.rate)
            lines.append(
                {
                    "Description": line.description[:1000],
                    "MainAccountDisplayValue": REVENUE_ACCOUNT,
                    "Quantity": "1",
                    "UnitPrice": amount(line.net),
                    "TransactionCurrencyAmount": amount(line.net),
                    "SalesTaxGroup": group,
                    "D2RInvoiceLineId": line.invoice_line_id[:60],
                    "D2RContractLineId": line.contract_line_id[:40],
                    "D2RBillingEventId": line.billing_event_id[:40],
                    "D2RKind": line.kind.value,
                }
            )
        header = {
            "CustomerAccount": account,
            "InvoiceDate": invoice.invoice_date.isoformat(),
            "DueDate": invoice.due_date.isoformat(),
            "CurrencyCode": invoice.currency,
            "D2RReference": invoice.invoice_id,
            "D2RSalesOrderNumber": order,
            "D2RBillingEventIds": ",".join(sorted({line.billing_event_id for line in invoice.lines}))[:1000],
            "D2RPeriod": str(invoice.period),
            **lineage_fields(invoice.lineage),
        }
        posted = await self._post_document(company, natural_key("INV-", invoice.invoice_id), header, lines)
        self._check_totals(posted, invoice.total, invoice.tax_total, "invoice")
        return qualified(company, str(posted["InvoiceId"]))

    async def post_credit_memo(self, memo: CreditMemo, customer_id: str, erp_invoice_id: str) -> str:
        """A free-text credit note (negative lines) that settles the invoice it credits."""
        company, account = split(customer_id)
        _, invoice_number = split(erp_invoice_id)
        invoice = await self._c.first(
            "FreeTextInvoiceHeaders",
            f"dataAreaId eq {literal(company)} and InvoiceId eq {literal(invoice_number)}",
        )
        if invoice is None:
            raise NotFoundError(f"invoice {erp_invoice_id} does not exist", system=SYSTEM, status=404)
        rates = await self._invoice_tax_groups(company, str(invoice["FreeTextNumber"]))
        lines = []
        for line in memo.lines:
            lines.append(
                {
                    "Description": f"Credit for {line.invoice_line_id}"[:1000],
                    "MainAccountDisplayValue": REVENUE_ACCOUNT,
                    "Quantity": "1",
                    "UnitPrice": amount(-line.net),
                    "TransactionCurrencyAmount": amount(-line.net),
                    "SalesTaxGroup": rates.get(line.invoice_line_id[:60], ""),
                    "D2RInvoiceLineId": line.credit_memo_line_id[:60],
                    "D2RContractLineId": line.contract_line_id[:40],
                    "D2RKind": line.kind.value,
                }
            )
        header = {
            "CustomerAccount": account,
            "InvoiceDate": memo.memo_date.isoformat(),
            "DueDate": memo.memo_date.isoformat(),
            "CurrencyCode": invoice["CurrencyCode"],
            "D2RReference": memo.credit_memo_id,
            "D2RSettleInvoiceId": invoice_number,
            "D2RSalesOrderNumber": invoice.get("D2RSalesOrderNumber") or "",
            **lineage_fields(memo.lineage),
        }
        posted = await self._post_document(company, natural_key("CN-", memo.credit_memo_id), header, lines)
        self._check_totals(posted, -memo.total, -memo.tax_total, "credit note")
        return qualified(company, str(posted["InvoiceId"]))

    async def _invoice_tax_groups(self, company: str, free_text_number: str) -> dict[str, str]:
        rows = await self._c.all(
            "FreeTextInvoiceLines",
            f"dataAreaId eq {literal(company)} and FreeTextNumber eq {literal(free_text_number)}",
            select=("D2RInvoiceLineId", "SalesTaxGroup"),
        )
        return {str(r["D2RInvoiceLineId"]): str(r["SalesTaxGroup"]) for r in rows}

    async def void_credit_memo(self, credit_memo_id: str) -> bool:
        """Undo a posted credit note the way D365 allows: a free-text invoice for the same
        lines, under its own key, so repeating the undo charges once. False when the credit
        note was never posted."""
        memo = await self._c.first("FreeTextInvoiceHeaders", f"D2RReference eq {literal(credit_memo_id)}")
        if memo is None or memo.get("IsPosted") != "Yes":
            return False
        company = str(memo["dataAreaId"])
        lines = await self._c.all(
            "FreeTextInvoiceLines",
            f"dataAreaId eq {literal(company)} and FreeTextNumber eq {literal(str(memo['FreeTextNumber']))}",
        )
        reversal_id = f"{credit_memo_id}:void"
        await self._post_document(
            company,
            natural_key("CNV-", reversal_id),
            {
                "CustomerAccount": memo["CustomerAccount"],
                "InvoiceDate": str(memo["InvoiceDate"])[:10],
                "DueDate": str(memo["InvoiceDate"])[:10],
                "CurrencyCode": memo["CurrencyCode"],
                "D2RReference": reversal_id,
                "D2ROpportunityId": memo.get("D2ROpportunityId") or "",
                "D2RSalesOrderNumber": memo.get("D2RSalesOrderNumber") or "",
            },
            [
                {
                    "Description": f"Reversal: {line.get('Description') or ''}"[:1000],
                    "MainAccountDisplayValue": line["MainAccountDisplayValue"],
                    "Quantity": "1",
                    "UnitPrice": str(-number(line["TransactionCurrencyAmount"])),
                    "TransactionCurrencyAmount": str(-number(line["TransactionCurrencyAmount"])),
                    "SalesTaxGroup": line.get("SalesTaxGroup") or "",
                    "D2RInvoiceLineId": str(line.get("D2RInvoiceLineId") or "")[:60],
                    "D2RKind": line.get("D2RKind") or "",
                }
                for line in lines
            ],
        )
        return True

    # -- journals --------------------------------------------------------------------------------
    async def post_journal(self, journal: JournalEntry) -> str:
        company = company_of(journal.legal_entity)
        lines = []
        for line in journal.lines:
            entry: dict[str, Any] = {
                "TransDate": journal.entry_date.isoformat(),
                "AccountType": "Ledger",
                "AccountDisplayValue": account_number(line.account),
                "CurrencyCode": journal.currency,
                "Text": (line.memo or journal.memo)[:60],
                "D2RMemo": line.memo[:1000],
            }
            if line.debit.amount:
                entry["DebitAmount"] = amount(line.debit)
            if line.credit.amount:
                entry["CreditAmount"] = amount(line.credit)
            lines.append(entry)
        header = {
            "JournalName": "GenJrn",
            "Description": journal.memo[:60],
            "D2RReference": journal.journal_entry_id,
            "D2RPeriod": str(journal.period),
            **lineage_fields(journal.lineage),
        }
        batch_number = await post_ledger_journal(self._c, company, journal.journal_entry_id, header, lines)
        return qualified(company, batch_number)

    async def reverse_journal(self, journal_entry_id: str) -> bool:
        """Undo a journal with a reversing one (debits and credits swapped, same date), under
        its own key so repeating the undo reverses once. False when it was never posted."""
        original = await self._c.first("LedgerJournalHeaders", f"D2RReference eq {literal(journal_entry_id)}")
        if original is None or original.get("IsPosted") != "Yes":
            return False
        company = str(original["dataAreaId"])
        batch_number = str(original["JournalBatchNumber"])
        lines = await self._c.all(
            "LedgerJournalLines", f"dataAreaId eq {literal(company)} and JournalBatchNumber eq {literal(batch_number)}"
        )
        reversed_lines = []
        for line in lines:
            entry = {k: line[k] for k in ("TransDate", "AccountType", "AccountDisplayValue", "CurrencyCode")}
            entry.update(
                Text=f"Reversal: {line.get('Text') or ''}"[:60],
                D2RMemo=f"Reversal: {line.get('D2RMemo') or ''}"[:1000],
                D2RProjectId=line.get("D2RProjectId") or "",
                D2RSourceId=line.get("D2RSourceId") or "",
            )
            entry["TransDate"] = str(entry["TransDate"])[:10]
            if number(line.get("DebitAmount")):
                entry["CreditAmount"] = str(number(line["DebitAmount"]))
            if number(line.get("CreditAmount")):
                entry["DebitAmount"] = str(number(line["CreditAmount"]))
            reversed_lines.append(entry)
        reversal_id = f"{journal_entry_id}:reversal"
        header = {
            "JournalName": original.get("JournalName") or "GenJrn",
            "Description": f"Reversal of {original['JournalBatchNumber']}"[:60],
            "D2RReference": reversal_id,
            "D2RPeriod": original.get("D2RPeriod") or "",
            "D2ROpportunityId": original.get("D2ROpportunityId") or "",
            "D2RReverses": journal_entry_id[:60],
        }
        await post_ledger_journal(self._c, company, reversal_id, header, reversed_lines)
        return True

    # -- reads -----------------------------------------------------------------------------------
    async def invoice_status(self, invoice_id: str) -> InvoiceStatus | None:
        header = await self._c.first("FreeTextInvoiceHeaders", f"D2RReference eq {literal(invoice_id)}")
        if header is None or header.get("IsPosted") != "Yes":
            return None
        company = str(header["dataAreaId"])
        trans = await self._c.first(
            "CustomerTransactions",
            f"dataAreaId eq {literal(company)} and Invoice eq {literal(str(header['InvoiceId']))}",
        )
        currency = str(header["CurrencyCode"])
        total = number(trans["AmountCur"]) if trans else number(header.get("TotalInvoiceAmount"))
        remaining = number(trans["RemainingAmountCur"]) if trans else total
        return InvoiceStatus(
            invoice_id=invoice_id,
            erp_invoice_id=qualified(company, str(header["InvoiceId"])),
            status="Paid In Full" if remaining == 0 else "Open",
            amount_paid=Money(amount=total - remaining, currency=currency).rounded(),
            amount_remaining=Money(amount=remaining, currency=currency).rounded(),
        )

    async def invoice_lineage(self, erp_invoice_id: str) -> InvoiceLineage | None:
        try:
            company, invoice_number = split(erp_invoice_id)
        except ValueError:
            return None
        header = await self._c.first(
            "FreeTextInvoiceHeaders",
            f"dataAreaId eq {literal(company)} and InvoiceId eq {literal(invoice_number)}",
        )
        if header is None or not header.get("D2RReference") or not header.get("D2ROpportunityId"):
            return None  # not an invoice d2r issued
        return InvoiceLineage(
            invoice_id=str(header["D2RReference"]),
            opportunity_id=str(header["D2ROpportunityId"]),
            erp_invoice_id=erp_invoice_id,
        )


async def post_ledger_journal(
    client: DynamicsClient, company: str, d2r_id: str, header: dict[str, Any], lines: list[dict[str, Any]]
) -> str:
    """A general journal (header, lines, posting) in one change set under d2r's key; the
    batch number of the posted journal. Found already: that journal."""
    batch_number = natural_key("JE-", d2r_id)
    record_key = key(dataAreaId=company, JournalBatchNumber=batch_number)
    existing = await client.get("LedgerJournalHeaders", record_key)
    if existing is None:
        requests = [
            Request(
                "POST", "LedgerJournalHeaders", {"dataAreaId": company, "JournalBatchNumber": batch_number, **header}
            ),
            *[
                Request(
                    "POST", "LedgerJournalLines", {"dataAreaId": company, "JournalBatchNumber": batch_number, **line}
                )
                for line in lines
            ],
            Request("POST", f"/data/LedgerJournalHeaders{record_key}/{ACTIONS}.post"),
        ]
        try:
            existing = await client.changeset_then_get(requests, "LedgerJournalHeaders", record_key)
        except AlreadyExistsError:  # a racing attempt, or one whose answer was lost, wrote it
            existing = await client.get("LedgerJournalHeaders", record_key)
        if existing is None:
            raise NotFoundError(f"journal {batch_number} vanished after posting", system=SYSTEM)
    if existing.get("D2RReference") not in (None, "", d2r_id):
        raise DuplicateError(
            f"journal {batch_number} belongs to {existing.get('D2RReference')}, not {d2r_id}",
            system=SYSTEM,
            vendor_code="KEY_TAKEN",
        )
    if existing.get("IsPosted") != "Yes":
        await client.changeset([Request("POST", f"/data/LedgerJournalHeaders{record_key}/{ACTIONS}.post")])
    return batch_number
