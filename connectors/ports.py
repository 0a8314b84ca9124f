"""Ports: what the workflows need from each system, independent of the vendor.

A new vendor (Kantata for PSA, Dynamics for ERP...) is one new module implementing
one of these protocols, registered in the worker's composition root.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from pydantic import BaseModel, Field

from domain.billing import Delivery
from domain.deal import ContractLine, Engagement, OpportunitySnapshot
from domain.model import CreditMemo, Invoice, JournalEntry
from domain.money import Money


class ProjectRef(BaseModel):
    project_id: str
    milestone_ids: list[str] = []
    resource_request_ids: list[str] = []


class CrmLinks(BaseModel):
    project_id: str | None
    contract_id: str | None
    status: str


class BillingStatus(BaseModel):
    """What finance knows about an engagement, fed back to the CRM and the PSA."""

    status: str  # e.g. "Billed", "Partially collected", "Overdue", "Collected"
    billed: Money
    collected: Money
    overdue: Money
    unbilled_wip: Money
    as_of: date


class ProjectChange(BaseModel):
    """An amendment's effect on the PSA project (applied, or reverted by re-applying `before`)."""

    change_id: str
    budget: Money | None = None
    end_date: date | None = None
    milestone_amounts: dict[str, Money] = Field(default_factory=dict)  # PSA milestone id -> amount


class InvoiceStatus(BaseModel):
    invoice_id: str  # d2r's invoice id (the ERP externalId)
    erp_invoice_id: str
    status: str  # "Open" | "Paid In Full" | "Voided" ...
    amount_paid: Money
    amount_remaining: Money


class InvoiceLineage(BaseModel):
    """Which engagement an ERP invoice belongs to (read back from its d2r fields)."""

    invoice_id: str  # d2r's id, the ERP externalId
    opportunity_id: str
    erp_invoice_id: str


class Receipt(BaseModel):
    # "<ERP payment id>:<ERP invoice id>", the id the payment webhook uses too: one payment
    # settling several invoices is one receipt per invoice.
    payment_id: str
    invoice_id: str  # d2r's invoice id (the ERP externalId)
    erp_invoice_id: str
    amount: Money
    received_on: date


class OpenItem(BaseModel):
    invoice_id: str  # d2r's invoice id
    erp_invoice_id: str
    opportunity_id: str
    due_date: date
    amount_remaining: Money


class Notification(BaseModel):
    subject: str
    body: str
    audience: list[str]  # roles to notify
    priority: str = "Normal"  # "Normal" | "High"
    related_id: str | None = None  # the opportunity it is about


class CrmPort(Protocol):
    async def read_opportunity(self, opportunity_id: str) -> OpportunitySnapshot: ...

    async def write_links(self, opportunity_id: str, links: CrmLinks) -> None: ...

    async def write_billing_status(self, opportunity_id: str, status: BillingStatus) -> None: ...

    async def set_contract_value(self, opportunity_id: str, amount: Money) -> None: ...

    async def notify(self, external_id: str, notification: Notification) -> str: ...


class PsaPort(Protocol):
    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef: ...

    async def remove_project(self, external_id: str) -> bool: ...

    async def read_delivery(self, project_id: str, lines: list[ContractLine], cutoff: date) -> Delivery: ...

    async def read_deliveries(self, projects: dict[str, list[ContractLine]], cutoff: date) -> dict[str, Delivery]: ...

    async def write_billing_status(self, project_id: str, status: BillingStatus) -> None: ...

    async def mark_billed(self, time_entry_ids: list[str], expense_ids: list[str], billed: bool) -> int: ...

    async def apply_change(self, project_id: str, change: ProjectChange) -> None: ...

    async def set_stage(self, project_id: str, stage: str, active: bool) -> None: ...

    async def project_opportunity(self, project_id: str) -> str | None: ...


class ErpPort(Protocol):
    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str: ...

    async def create_sales_order(
        self, engagement: Engagement, customer_id: str, project_id: str, external_id: str
    ) -> str: ...

    async def cancel_sales_order(self, external_id: str) -> bool: ...

    async def update_sales_order_lines(self, external_id: str, lines: list[ContractLine]) -> None: ...

    async def close_sales_order(self, external_id: str) -> None: ...

    async def post_invoice(self, invoice: Invoice, customer_id: str, sales_order_id: str) -> str: ...

    async def post_credit_memo(self, memo: CreditMemo, customer_id: str, erp_invoice_id: str) -> str: ...

    async def void_credit_memo(self, credit_memo_id: str) -> bool: ...

    async def post_journal(self, journal: JournalEntry) -> str: ...

    async def reverse_journal(self, journal_entry_id: str) -> bool: ...

    async def invoice_status(self, invoice_id: str) -> InvoiceStatus | None: ...

    async def invoice_lineage(self, erp_invoice_id: str) -> InvoiceLineage | None: ...

    async def receipts(
        self, customer_id: str, since: date, through: date, opportunity_id: str | None = None
    ) -> list[Receipt]: ...
