"""Canonical records d2r reads from and writes back to the CRM, PSA and ERP (besides the
financial documents in domain/model.py): links, billing status, invoice status, receipts,
open items, notifications, project refs and changes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

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
