"""Input, messages, state and view of EngagementWorkflow (pydantic, via the data converter)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from contracts.crm import WriteBillingStatusInput
from contracts.erp import PostDocumentsInput
from contracts.psa import FeedbackInput
from contracts.queues import TaskQueues
from contracts.reporting import RecordEngagementInput
from domain.amendments import Amendment, AppliedAmendment
from domain.billing import Delivery
from domain.contract import ContractState, LinePosition
from domain.credit_memos import CreditMemoRequest
from domain.deal import Engagement, FieldError
from domain.model import Approval, ExceptionRecord, Payment
from domain.money import Money
from domain.stages import Stage


class CancelRequest(BaseModel):
    reason: str
    by: str | None = None


class ResumeRequest(BaseModel):
    """A person asks the engagement waiting for a fix to try the step again."""

    by: str | None = None
    via: Literal["retry", "revalidate"] = "retry"  # revalidate: the deal was fixed in the CRM


class TimelineEntry(BaseModel):
    at: datetime
    stage: Stage
    note: str


# ---- people deciding -----------------------------------------------------------------------


class DecisionInput(BaseModel):
    approval_id: str
    approve: bool
    comment: str | None = None
    by: str  # the authenticated subject (the API fills it in, never the caller's body)
    roles: list[str]


class ChangeKind(StrEnum):
    AMENDMENT = "amendment"
    CREDIT_MEMO = "credit_memo"


class ChangeStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"  # a step failed for good; the earlier steps were undone


class AmendmentInput(BaseModel):
    amendment: Amendment
    requested_by: str


class CreditMemoInput(BaseModel):
    request: CreditMemoRequest
    requested_by: str


class ChangeRecord(BaseModel):
    change_id: str
    kind: ChangeKind
    status: ChangeStatus
    requested_by: str
    approval_ids: list[str]
    summary: str
    detail: str | None = None
    erp_document_id: str | None = None


# ---- delivery and finance feedback ---------------------------------------------------------


class EngagementCloseInput(BaseModel):
    period: str  # "2026-11"
    requested_by: str | None = None
    # A period-close run that read every project of the entity in bulk passes the facts in;
    # otherwise the engagement reads its own from the PSA.
    delivery: Delivery | None = None
    # Receipts the ERP holds for the engagement's invoices up to the cut-off (the entity's
    # batch reads them); already known payments are ignored.
    payments: list[PaymentNotice] = Field(default_factory=list)
    # Invoices the ERP holds open past their due date as of the close (a safety net for a
    # daily receivables sweep that did not run).
    overdue: list[OverdueInvoice] = Field(default_factory=list)
    # True: the caller posts, feeds back and records what the run produced (the result's
    # `outbox`) in bulk for many engagements; the engagement makes no calls of its own.
    outbox: bool = False


class InvoiceSummary(BaseModel):
    invoice_id: str
    erp_invoice_id: str | None
    total: Money
    tax: Money
    due_date: date


class PeriodResult(BaseModel):
    period: str
    invoices: list[InvoiceSummary]
    billed: Money
    recognized: Money
    deferred: Money
    unbilled: Money
    revenue_journal_id: str | None
    exceptions: list[ExceptionRecord]
    outbox: CloseOutbox | None = None  # only when the request asked for one


class CloseOutbox(BaseModel):
    """What one engagement's period close leaves for the entity's batch to write: the ERP
    documents, the CRM and PSA feedback, the hub's new facts. Every write is idempotent
    (deterministic external ids), so a batch that runs twice changes nothing."""

    workflow_id: str
    erp: PostDocumentsInput | None = None
    crm: WriteBillingStatusInput | None = None
    psa: FeedbackInput | None = None
    hub: RecordEngagementInput | None = None


class OutboxFailure(BaseModel):
    """The batch could not write an engagement's outbox: the engagement writes it itself
    (and waits for a person if that fails too)."""

    period: str
    outbox: CloseOutbox
    error: str


class OverdueInvoice(BaseModel):
    invoice_id: str  # d2r's invoice id (the ERP externalId)
    due_date: date
    amount_remaining: Money  # as the ERP holds it


class OverdueNotice(BaseModel):
    """From the entity's daily receivables sweep: invoices of this engagement that the ERP
    shows unpaid past their due date (collection risk)."""

    as_of: date
    invoices: list[OverdueInvoice]


class PaymentNotice(BaseModel):
    payment_id: str  # the ERP's payment id: a redelivered webhook is the same payment
    invoice_id: str  # d2r's invoice id (the ERP externalId)
    amount: Money
    received_on: date


class MilestoneNotice(BaseModel):
    milestone_id: str
    completed_on: date


class Amounts(BaseModel):
    contract_value: Money
    billed: Money
    credited: Money
    net_billed: Money
    recognized: Money
    deferred: Money
    unbilled: Money
    collected: Money
    outstanding: Money
    overdue: Money


class WaitKind(StrEnum):
    APPROVAL = "approval"  # a person's decision (deal, amendment, credit memo)
    FIX = "fix"  # a person fixes the deal in the CRM, or the outside trouble, then resumes it
    PERIOD_CLOSE = "period_close"  # delivery goes on; the next billing and revenue run is the month-end
    PAYMENT = "payment"  # delivered and billed: the customer's payment closes it out


class WaitingFor(BaseModel):
    """What the engagement waits for, and since when, in the words a person acts on."""

    kind: WaitKind
    what: str
    since: datetime
    period: str | None = None  # PERIOD_CLOSE: the month whose close is next
    approval_ids: list[str] = Field(default_factory=list)  # APPROVAL: the pending ones


class ContractLineRef(BaseModel):
    """A contract line as booked (and amended): the id amendments and credit memos name."""

    line_id: str
    name: str
    billing_model: str
    role: str | None = None
    amount: Money


class InvoiceLineRef(BaseModel):
    invoice_line_id: str
    contract_line_id: str
    description: str
    net: Money
    credited: Money  # by credit memos issued
    creditable: Money  # what a new credit memo may still take (memos awaiting approval counted)


class InvoiceRef(BaseModel):
    """An issued invoice with the ids a credit memo names."""

    invoice_id: str  # d2r's id (the ERP externalId)
    erp_invoice_id: str | None
    period: str
    invoice_date: date
    due_date: date
    total: Money
    open: Money  # not yet paid or credited
    lines: list[InvoiceLineRef]
    # The total in the legal entity's functional currency (as the ERP books it) and in the
    # reporting currency (as the hub reports it): each at the hub's rate for the invoice date,
    # rounded to the currency's minor unit. None: the same currency as `total`.
    functional: Money | None = None
    reporting: Money | None = None


class PeriodRevenue(BaseModel):
    """What a period recognized, in the contract's, the functional and the reporting currency:
    each entry converted at the hub's rate for its date and rounded on its own, then added
    (as the hub adds its revenue facts). None: the same currency as `amount`."""

    period: str
    amount: Money
    functional: Money | None = None
    reporting: Money | None = None


class EngagementView(BaseModel):
    """Everything a person needs to read an engagement, returned by the `view` query."""

    workflow_id: str
    opportunity_id: str
    stage: Stage
    stage_since: datetime | None = None
    waiting_for: WaitingFor | None = None
    name: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    erp_customer_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None  # the ERP sales order
    legal_entity: str | None = None
    currency: str | None = None
    contract_value: Money | None = None
    billing_models: list[str] = Field(default_factory=list)
    errors: list[FieldError] = Field(default_factory=list)
    failure: str | None = None
    amounts: Amounts | None = None
    # The booked lines from validation on (ids for amendments); `lines` are their figures
    # from the first close on.
    contract_lines: list[ContractLineRef] = Field(default_factory=list)
    lines: list[LinePosition] = Field(default_factory=list)
    invoices: list[InvoiceRef] = Field(default_factory=list)
    revenue: list[PeriodRevenue] = Field(default_factory=list)  # per period recognized in, oldest first
    approvals: list[Approval] = Field(default_factory=list)
    pending_approvals: list[str] = Field(default_factory=list)
    changes: list[ChangeRecord] = Field(default_factory=list)
    periods_closed: list[str] = Field(default_factory=list)
    overdue_invoices: list[str] = Field(default_factory=list)
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    delivery_complete: bool = False
    timeline: list[TimelineEntry] = Field(default_factory=list)


class EngagementState(BaseModel):
    """What continue-as-new carries into the next run: the view plus the books."""

    view: EngagementView
    engagement: Engagement | None = None
    contract: ContractState | None = None
    erp_invoice_ids: dict[str, str] = Field(default_factory=dict)
    payments: list[Payment] = Field(default_factory=list)
    period_results: dict[str, PeriodResult] = Field(default_factory=dict)
    applied_amendments: dict[str, AppliedAmendment] = Field(default_factory=dict)
    amendment_requests: dict[str, AmendmentInput] = Field(default_factory=dict)
    credit_memo_requests: dict[str, CreditMemoInput] = Field(default_factory=dict)
    reminded: list[str] = Field(default_factory=list)  # approval ids already reminded
    escalated: list[str] = Field(default_factory=list)
    close_requested: bool = False
    recorded: list[str] = Field(default_factory=list)  # document ids already written to the hub
    incidents: int = 0  # times the engagement needed a person (numbers the hub's exceptions)
    # a person resumed the last incident and its step has not passed yet: failing again
    # reopens that incident (one exception, counted again), passing resolves it
    incident_retrying: bool = False
    last_outbox: CloseOutbox | None = None  # the latest batched close's writes (a re-run repeats them)
    # A period was closed after delivery was reported complete: the final billing and
    # revenue run (remaining lines recognized at their final price) has happened.
    final_run_done: bool = False


class EngagementInput(BaseModel):
    opportunity_id: str
    requested_by: str | None = None
    queues: TaskQueues = Field(default_factory=TaskQueues)
    carried: EngagementState | None = None  # set only by continue-as-new
