"""Inputs and results of the ERP activities."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from contracts.window_stage import StagedWindow
from domain.deal import ContractLine, Engagement
from domain.model import CreditMemo, Invoice, JournalEntry
from domain.system_records import InvoiceLineage, OpenItem, Receipt


class UpsertCustomerInput(BaseModel):
    engagement: Engagement
    external_id: str


class UpsertCustomerResult(BaseModel):
    erp_customer_id: str


class CreateSalesOrderInput(BaseModel):
    engagement: Engagement
    erp_customer_id: str
    project_id: str
    external_id: str


class CreateSalesOrderResult(BaseModel):
    sales_order_id: str


class CancelSalesOrderInput(BaseModel):
    legal_entity: str
    external_id: str


class CancelSalesOrderResult(BaseModel):
    cancelled: bool


class UpdateSalesOrderInput(BaseModel):
    legal_entity: str
    external_id: str  # the sales order's external id
    lines: list[ContractLine]


class CloseSalesOrderInput(BaseModel):
    legal_entity: str
    external_id: str


class PostDocumentsInput(BaseModel):
    """Everything one step issues to the ERP, posted in one activity: a period close's
    invoices and revenue journal, or a credit memo and its journal. Each document's own
    id is its ERP externalId, so a retry upserts what was already posted."""

    legal_entity: str
    erp_customer_id: str
    sales_order_id: str
    invoices: list[Invoice] = []
    credit_memos: list[CreditMemo] = []
    journals: list[JournalEntry] = []
    erp_invoice_ids: dict[str, str] = {}  # d2r invoice id -> ERP id, for credit memos


class PostDocumentsResult(BaseModel):
    invoices: dict[str, str]  # d2r id -> ERP internal id
    credit_memos: dict[str, str]
    journals: dict[str, str]


class VoidCreditMemoInput(BaseModel):
    legal_entity: str
    credit_memo_id: str


class ReverseJournalInput(BaseModel):
    legal_entity: str
    journal_entry_id: str


class InvoiceStatusInput(BaseModel):
    legal_entity: str
    invoice_id: str


class ReceiptsInput(BaseModel):
    legal_entity: str
    erp_customer_id: str
    since: date
    through: date
    opportunity_id: str | None = None  # only this deal's invoices (a customer may have several)


class ReceiptsResult(BaseModel):
    receipts: list[Receipt]


class ErpAck(BaseModel):
    ok: bool = True
    done: bool = True  # False: there was nothing to undo


class PaymentLineageInput(BaseModel):
    erp_instance: str | None = None
    erp_invoice_ids: list[str]


class PaymentLineageResult(BaseModel):
    invoices: list[InvoiceLineage]  # only the invoices d2r issued


class LockPeriodInput(BaseModel):
    legal_entity: str
    period: str


class LockPeriodResult(BaseModel):
    locked_now: bool  # False: it was locked already


class PostDocumentsWindowInput(BaseModel):
    """The month-end window's ERP documents, by engagement workflow id."""

    documents: dict[str, PostDocumentsInput] = {}
    stage: StagedWindow | None = None  # set: the documents of `staged` are in their outboxes there
    staged: list[str] = []


class WindowWriteResult(BaseModel):
    """A window's writes: the engagements whose write the system refused for good, and why
    (the rest were written)."""

    refused: dict[str, str] = {}


class ReceivablesWindowInput(BaseModel):
    """A month-end window's receivables, in one read: each engagement's receipts received
    from `since` to `through`, and its invoices due from `due_from` to `due_to` still open."""

    legal_entity: str
    since: date
    through: date
    due_from: date
    due_to: date
    customers: dict[str, str]  # opportunity id -> ERP customer id


class ReceivablesWindowResult(BaseModel):
    receipts: dict[str, list[Receipt]] = {}  # opportunity id -> its invoices' receipts
    overdue: list[OpenItem] = []  # of these engagements' invoices only


class OpenItemsInput(BaseModel):
    legal_entity: str
    due_from: date
    due_to: date
    opportunity_ids: list[str] | None = None  # only these engagements' invoices (a month-end window)


class OpenItemsResult(BaseModel):
    items: list[OpenItem] = []
    skipped: str | None = None  # the ERP does not hold the entity
