"""PeriodCloseWorkflow (month-end of one legal entity): its request, report and lock decision,
and the models of its activities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from contracts.engagement import CloseOutbox, EngagementCloseInput, OutboxFailure
from contracts.posting import PostingConfig, PostingResult
from contracts.queues import TaskQueues
from contracts.source_sync import SourceSyncResult
from domain.deal import ContractLine
from domain.model import Approval, ExceptionRecord, record_id
from domain.money import Money


class FindEngagementsInput(BaseModel):
    """One page of the entity's engagements in delivery (a window's worth)."""

    legal_entity: str
    page_size: int = Field(default=20, ge=1, le=200)
    page_token: str | None = None  # base64 of visibility's next-page token


class EngagementTarget(BaseModel):
    """One engagement in delivery as visibility lists it, with what its memo says the batch
    needs to read its delivery in bulk (no lines: the engagement reads its own)."""

    workflow_id: str
    legal_entity: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    erp_customer_id: str | None = None
    lines: list[ContractLine] = Field(default_factory=list)

    @property
    def batched(self) -> bool:
        return bool(self.lines and self.project_id and self.legal_entity)


class EngagementList(BaseModel):
    targets: list[EngagementTarget] = Field(default_factory=list)
    next_page_token: str | None = None  # None: the last page


class CloseWindowInput(BaseModel):
    """The `close_period` update of each engagement of one window (workflow id -> its input)."""

    requests: dict[str, EngagementCloseInput]


class EngagementCloseLine(BaseModel):
    workflow_id: str
    ok: bool
    invoices: int = 0
    billed: Money | None = None
    recognized: Money | None = None
    deferred: Money | None = None
    unbilled: Money | None = None
    error: str | None = None
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    batched: bool = False  # the batch read its delivery and wrote its documents and feedback
    outbox_error: str | None = None  # the batch could not write them: handed back to the engagement


class ClosedEngagement(BaseModel):
    line: EngagementCloseLine
    outbox: CloseOutbox | None = None  # what the batch writes for it (None: it wrote its own)


class CloseWindowResult(BaseModel):
    closed: list[ClosedEngagement]


class HandBackInput(BaseModel):
    """Outboxes the batch could not write: each engagement writes its own (`outbox_failed`)."""

    failures: list[OutboxFailure]


class HandBackResult(BaseModel):
    signalled: int


class ReconcileInput(BaseModel):
    legal_entity: str
    period: str


class ReconcileResult(BaseModel):
    status: str  # "clean" | "differences" | "nothing_to_reconcile" | "skipped"
    differences: int = 0
    run_id: int | None = None
    detail: str | None = None


def close_exception(legal_entity: str, period: str, code: str, message: str, on: date) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=record_id("exc", "close", legal_entity, period, code),
        code=code,
        message=message,
        source_id=f"{legal_entity}:{period}",
        raised_on=on,
    )


class CloseStep(StrEnum):
    CUT_OFF = "CUT_OFF"
    POSTING = "POSTING"
    BILLING = "BILLING"
    RECONCILING = "RECONCILING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    LOCKING = "LOCKING"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    DELEGATED = "DELEGATED"  # a scheduled run that started the period's own close


class PeriodCloseRequest(BaseModel):
    legal_entity: str
    period: str | None = None  # None: the month before today (the monthly Schedule)
    requested_by: str = "system:schedule"
    queues: TaskQueues = Field(default_factory=TaskQueues)
    window: int = Field(default=20, ge=1, le=200)  # engagements closed at a time
    posting: PostingConfig = Field(default_factory=PostingConfig)
    approver_roles: list[str] = Field(default_factory=lambda: ["finance"])
    heartbeat_seconds: int = 60


class LockDecision(BaseModel):
    approve: bool
    by: str  # the authenticated subject (the API fills it in)
    roles: list[str]
    comment: str | None = None
    # Approving a lock while reconciliation shows differences needs this, in words; the
    # API records it in the audit log with the number of differences overridden.
    override_reason: str | None = None


class CloseTotals(BaseModel):
    billed: dict[str, Decimal] = Field(default_factory=dict)  # currency -> amount
    recognized: dict[str, Decimal] = Field(default_factory=dict)
    deferred: dict[str, Decimal] = Field(default_factory=dict)
    unbilled: dict[str, Decimal] = Field(default_factory=dict)
    invoices: int = 0

    def add(self, line: EngagementCloseLine) -> None:
        self.invoices += line.invoices
        for name in ("billed", "recognized", "deferred", "unbilled"):
            money: Money | None = getattr(line, name)
            if money is not None:
                bucket: dict[str, Decimal] = getattr(self, name)
                bucket[money.currency] = bucket.get(money.currency, Decimal(0)) + money.amount


class PeriodCloseReport(BaseModel):
    workflow_id: str
    legal_entity: str
    period: str | None = None
    step: CloseStep = CloseStep.CUT_OFF
    requested_by: str
    cutoff: date | None = None
    posting: PostingResult | None = None
    engagements: list[EngagementCloseLine] = Field(default_factory=list)
    engagements_failed: int = 0
    totals: CloseTotals = Field(default_factory=CloseTotals)
    sync: SourceSyncResult | None = None
    reconciliation: ReconcileResult | None = None
    approval: Approval | None = None
    locked: bool = False
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    exceptions_total: int = 0
    timeline: list[str] = Field(default_factory=list)


# Receipts older than this before a cut-off were read by earlier closes (known ids are
# ignored anyway); the month-end batch and an engagement closing on its own use the same.
RECEIPTS_LOOKBACK_DAYS = 62
