"""ERP activities: customer master and sales orders, in the legal entity's ERP instance."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import translating_errors
from activities.window_stage import Stage, write_window
from connectors.ports import ErpCustomersPort
from connectors.routing import ErpRouter
from contracts.erp import (
    CancelSalesOrderInput,
    CancelSalesOrderResult,
    CloseSalesOrderInput,
    CreateSalesOrderInput,
    CreateSalesOrderResult,
    ErpAck,
    InvoiceStatusInput,
    OpenItemsInput,
    OpenItemsResult,
    PaymentLineageInput,
    PaymentLineageResult,
    PostDocumentsInput,
    PostDocumentsResult,
    PostDocumentsWindowInput,
    ReceiptsInput,
    ReceiptsResult,
    ReceivablesWindowInput,
    ReceivablesWindowResult,
    ReverseJournalInput,
    UpdateSalesOrderInput,
    UpsertCustomerInput,
    UpsertCustomerResult,
    VoidCreditMemoInput,
    WindowWriteResult,
)
from domain.deal import Customer
from domain.master_data import DUPLICATE_KIND
from domain.system_records import InvoiceStatus, Receipt
from reporting.keymap import KeyRecord


class KeyRecorder(Protocol):
    """Where the ERP's own ids of the documents d2r posts are kept (the hub's key map)."""

    async def record_keys(self, records: Sequence[KeyRecord]) -> int: ...


async def _no_second_customer(customers: ErpCustomersPort | None, customer: Customer) -> None:
    """Duplicate prevention: an ERP customer of another CRM account already holds this tax
    id, so this account is a second CRM record of the same customer. Refused before a
    second ERP customer is written; the engagement waits for the accounts to be merged."""
    if customers is None or not customer.tax_id:
        return
    others = [c for c in await customers.customers_with_tax_id(customer.tax_id) if c.account_id != customer.customer_id]
    if others:
        held = ", ".join(f"{c.record_key} (account {c.account_id or 'unknown'})" for c in others)
        raise ApplicationError(
            f"CRM account {customer.customer_id} has tax id {customer.tax_id}, which ERP customer {held} "
            "already holds: merge the duplicate CRM accounts, then retry",
            {"tax_id": customer.tax_id, "account_id": customer.customer_id, "erp_customers": held},
            type=DUPLICATE_KIND,
            non_retryable=True,
        )


class ErpActivities:
    def __init__(self, router: ErpRouter) -> None:
        self._router = router

    @activity.defn(name="erp.upsert_customer")
    @translating_errors
    async def upsert_customer(self, data: UpsertCustomerInput) -> UpsertCustomerResult:
        connection = self._router.for_entity(data.engagement.legal_entity)
        await _no_second_customer(connection.customers, data.engagement.customer)
        return UpsertCustomerResult(
            erp_customer_id=await connection.erp.upsert_customer(data.engagement, data.external_id)
        )

    @activity.defn(name="erp.create_sales_order")
    @translating_errors
    async def create_sales_order(self, data: CreateSalesOrderInput) -> CreateSalesOrderResult:
        erp = self._router.for_entity(data.engagement.legal_entity).erp
        return CreateSalesOrderResult(
            sales_order_id=await erp.create_sales_order(
                data.engagement, data.erp_customer_id, data.project_id, data.external_id
            )
        )

    @activity.defn(name="erp.cancel_sales_order")
    @translating_errors
    async def cancel_sales_order(self, data: CancelSalesOrderInput) -> CancelSalesOrderResult:
        erp = self._router.for_entity(data.legal_entity).erp
        return CancelSalesOrderResult(cancelled=await erp.cancel_sales_order(data.external_id))


class ErpBillingActivities:
    def __init__(
        self, router: ErpRouter, concurrency: int = 8, keys: KeyRecorder | None = None, stage: Stage | None = None
    ) -> None:
        self._router = router
        self._concurrency = concurrency  # a window's engagements share the ERP's concurrency budget
        self._keys = keys
        self._stage = stage  # where a month-end window keeps its outboxes (the hub)

    @activity.defn(name="erp.update_sales_order")
    @translating_errors
    async def update_sales_order(self, data: UpdateSalesOrderInput) -> ErpAck:
        await self._router.for_entity(data.legal_entity).erp.update_sales_order_lines(data.external_id, data.lines)
        return ErpAck()

    @activity.defn(name="erp.close_sales_order")
    @translating_errors
    async def close_sales_order(self, data: CloseSalesOrderInput) -> ErpAck:
        await self._router.for_entity(data.legal_entity).erp.close_sales_order(data.external_id)
        return ErpAck()

    @activity.defn(name="erp.post_documents")
    @translating_errors
    async def post_documents(self, data: PostDocumentsInput) -> PostDocumentsResult:
        return await self._post(data)

    @activity.defn(name="erp.post_documents_window")
    @translating_errors
    async def post_documents_window(self, data: PostDocumentsWindowInput) -> WindowWriteResult:
        """A month-end window's documents, each engagement's on its own (a refusal is its own)."""
        refused = await write_window(
            data.documents,
            self._stage,
            data.stage,
            data.staged,
            "erp",
            PostDocumentsInput,
            self._post,
            self._concurrency,
        )
        return WindowWriteResult(refused=refused)

    async def _post(self, data: PostDocumentsInput) -> PostDocumentsResult:
        erp = self._router.for_entity(data.legal_entity).erp
        invoices = {
            inv.invoice_id: await erp.post_invoice(inv, data.erp_customer_id, data.sales_order_id)
            for inv in data.invoices
        }
        known = {**data.erp_invoice_ids, **invoices}
        memos = {}
        for memo in data.credit_memos:
            if memo.invoice_id not in known:  # posted by a month-end batch: found by its externalId
                status = await erp.invoice_status(memo.invoice_id)
                if status is None:
                    raise ApplicationError(
                        f"invoice {memo.invoice_id} is not in the ERP", type="InvoiceNotInErp", non_retryable=True
                    )
                known[memo.invoice_id] = status.erp_invoice_id
            memos[memo.credit_memo_id] = await erp.post_credit_memo(memo, data.erp_customer_id, known[memo.invoice_id])
        journals = {j.journal_entry_id: await erp.post_journal(j) for j in data.journals}
        posted = PostDocumentsResult(invoices=invoices, credit_memos=memos, journals=journals)
        await self._record_keys(data, posted)
        return posted

    async def _record_keys(self, data: PostDocumentsInput, posted: PostDocumentsResult) -> None:
        """The ERP's internal ids of what was just posted, into the key map: only this call
        learns them (a month-end batch never hands them back). The hub is not the ERP's
        business: if it is down the posting stands and the ids wait for a later write."""
        if self._keys is None:
            return
        instance = self._router.instance_name(data.legal_entity)
        wid = activity.info().workflow_id
        keys = [
            KeyRecord(
                system="erp",
                instance=instance,
                record_type=kind,
                external_id=d2r_id,
                record_id=erp_id,
                opportunity_id=lineage.opportunity_id,
                project_id=lineage.project_id,
                legal_entity=data.legal_entity,
                related=related,
                source="erp.post_documents",
                workflow_id=wid,
            )
            for kind, d2r_id, erp_id, lineage, related in (
                *[("invoice", i.invoice_id, posted.invoices[i.invoice_id], i.lineage, (data.sales_order_id,))
                  for i in data.invoices],
                *[("credit_memo", c.credit_memo_id, posted.credit_memos[c.credit_memo_id], c.lineage, (c.invoice_id,))
                  for c in data.credit_memos],
                *[("journal", j.journal_entry_id, posted.journals[j.journal_entry_id], j.lineage, ())
                  for j in data.journals],
            )
        ]  # fmt: skip
        try:
            await self._keys.record_keys(keys)
        except Exception as error:
            activity.logger.warning("key map not updated for %s: %s", wid, error)

    @activity.defn(name="erp.void_credit_memo")
    @translating_errors
    async def void_credit_memo(self, data: VoidCreditMemoInput) -> ErpAck:
        done = await self._router.for_entity(data.legal_entity).erp.void_credit_memo(data.credit_memo_id)
        return ErpAck(done=done)

    @activity.defn(name="erp.reverse_journal")
    @translating_errors
    async def reverse_journal(self, data: ReverseJournalInput) -> ErpAck:
        done = await self._router.for_entity(data.legal_entity).erp.reverse_journal(data.journal_entry_id)
        return ErpAck(done=done)

    @activity.defn(name="erp.receipts")
    @translating_errors
    async def receipts(self, data: ReceiptsInput) -> ReceiptsResult:
        receivables = self._router.for_entity(data.legal_entity).receivables
        return ReceiptsResult(
            receipts=await receivables.receipts(data.erp_customer_id, data.since, data.through, data.opportunity_id)
        )

    @activity.defn(name="erp.receivables_window")
    @translating_errors
    async def receivables_window(self, data: ReceivablesWindowInput) -> ReceivablesWindowResult:
        """A month-end window's receipts (each engagement's own invoices) and its invoices
        open past due, in one activity: one Action per window, not two."""
        receivables = self._router.for_entity(data.legal_entity).receivables
        gate = asyncio.Semaphore(self._concurrency)

        async def one(opportunity_id: str, customer_id: str) -> tuple[str, list[Receipt]]:
            async with gate:
                found = await receivables.receipts(customer_id, data.since, data.through, opportunity_id)
                return opportunity_id, found

        pairs = await asyncio.gather(*(one(o, c) for o, c in sorted(data.customers.items())))
        overdue = await receivables.open_items_due(
            data.legal_entity, data.due_from, data.due_to, sorted(data.customers)
        )
        return ReceivablesWindowResult(receipts=dict(pairs), overdue=overdue or [])

    @activity.defn(name="erp.open_items_due")
    @translating_errors
    async def open_items_due(self, data: OpenItemsInput) -> OpenItemsResult:
        """d2r invoices due in the range and still open (of the given engagements only)."""
        receivables = self._router.for_entity(data.legal_entity).receivables
        items = await receivables.open_items_due(data.legal_entity, data.due_from, data.due_to, data.opportunity_ids)
        if items is None:
            return OpenItemsResult(skipped=f"the ERP holds no {data.legal_entity}")
        return OpenItemsResult(items=items)

    @activity.defn(name="erp.invoice_status")
    @translating_errors
    async def invoice_status(self, data: InvoiceStatusInput) -> InvoiceStatus | None:
        return await self._router.for_entity(data.legal_entity).erp.invoice_status(data.invoice_id)


class ErpInboundActivities:
    def __init__(self, router: ErpRouter) -> None:
        self._router = router

    @activity.defn(name="erp.invoice_lineage")
    @translating_errors
    async def invoice_lineage(self, data: PaymentLineageInput) -> PaymentLineageResult:
        erp = self._router.instance(data.erp_instance).erp
        found = [await erp.invoice_lineage(i) for i in data.erp_invoice_ids]
        return PaymentLineageResult(invoices=[f for f in found if f is not None])
