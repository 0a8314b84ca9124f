"""Inputs and results of the reporting-hub activities."""

from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.window_stage import StagedWindow
from domain.bookings import BookingMovement
from domain.deal import Engagement
from domain.model import BillingEvent, CreditMemo, ExceptionRecord, Invoice, Payment, RevenueEntry


class RecordEngagementInput(BaseModel):
    workflow_id: str
    engagement: Engagement  # current terms (amendments included): the dimensions
    # Append-only bookings: the deal as booked, then each change order (domain.bookings).
    bookings: list[BookingMovement] = Field(default_factory=list)
    project_id: str
    contract_id: str
    erp_customer_id: str | None = None
    invoices: list[Invoice] = Field(default_factory=list)
    credit_memos: list[CreditMemo] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    revenue_entries: list[RevenueEntry] = Field(default_factory=list)
    # Billing and revenue runs' exceptions (warnings and errors), so every one reaches
    # /v1/exceptions and the dashboard, not only the engagement view.
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    # The billing events issued since the last write: the hub keeps what d2r billed each
    # time entry at (its rate precedence), beside the PSA's bill rate on the time fact.
    billing_events: list[BillingEvent] = Field(default_factory=list)


class RecordEngagementResult(BaseModel):
    written: dict[str, int]


class RaiseExceptionInput(BaseModel):
    """A workflow waiting for a person: one hub exception per incident (`incident` numbers them)."""

    workflow_id: str
    incident: int
    kind: str  # e.g. "engagement.needs_attention"
    message: str
    error_type: str | None = None
    stage: str | None = None
    opportunity_id: str | None = None
    customer_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    legal_entity: str | None = None
    detail: dict[str, str] = Field(default_factory=dict)


class ResolveExceptionInput(BaseModel):
    workflow_id: str
    incident: int
    kind: str
    resolved_by: str
    note: str


class RetryingExceptionInput(BaseModel):
    """A person resumed the incident: the hub shows it `retrying` until its step passes."""

    workflow_id: str
    incident: int
    kind: str


class ExceptionRef(BaseModel):
    exception_id: int


class RecordEngagementsInput(BaseModel):
    """The month-end window's hub facts, by engagement workflow id."""

    records: dict[str, RecordEngagementInput] = {}
    stage: StagedWindow | None = None  # set: the facts of `staged` are in their outboxes there
    staged: list[str] = []
