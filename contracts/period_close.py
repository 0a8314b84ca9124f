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
from contracts.window_stage import StagedWindow
from domain.deal import ContractLine
from domain.model import Approval, ExceptionRecord, record_id
from domain.money import Money

# Engagements closed in one window (one child workflow). Wider windows cost fewer Actions
# per engagement (a window's ~12 are shared). With the hub, a window's delivery and outboxes
# wait there (contracts/window_stage.py) and its payloads carry ids, so windows are this
# wide whatever an engagement weighs; without one they travel in the window's payloads,
# and the payload budget narrows the window.
DEFAULT_WINDOW = 250  # the widest window a close uses
MAX_WINDOW = 250
FIRST_WINDOW = 50  # before anything is measured
MIN_WINDOW = 10
# The largest payload a window should produce (Temporal refuses 2 MB): windows are sized
# from what the previous one weighed per engagement, within MIN_WINDOW..the request's window.
PAYLOAD_BUDGET_BYTES = 384 * 1024
# Exceptions the summary carries as a sample; every one is in the hub's close report.
EXCEPTION_SAMPLE = 20


class FindEngagementsInput(BaseModel):
    """One page of the entity's engagements in delivery (a window's worth)."""

    legal_entity: str
    page_size: int = Field(default=DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
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
    """The `close_period` update of each engagement of one window (workflow id -> its input);
    every line of the window goes to the hub's close report under `report_id`."""

    report_id: str
    legal_entity: str
    period: str
    window: int
    requests: dict[str, EngagementCloseInput]
    not_closed: dict[str, str] = Field(default_factory=dict)  # workflow id -> why the batch could not ask it
    # With a stage: the requests of these engagements (workflow id -> project id) get their
    # project's delivery from it, and the outboxes go there instead of into the result.
    stage: StagedWindow | None = None
    staged_projects: dict[str, str] = Field(default_factory=dict)


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

    def merge(self, other: CloseTotals) -> None:
        self.invoices += other.invoices
        for name in ("billed", "recognized", "deferred", "unbilled"):
            bucket: dict[str, Decimal] = getattr(self, name)
            for currency, amount in getattr(other, name).items():
                bucket[currency] = bucket.get(currency, Decimal(0)) + amount


class CloseTally(BaseModel):
    """What a window (or the whole close) came to: counts, totals per currency, a sample of
    its exceptions. Bounded whatever the window's size: the lines are in the hub."""

    engagements: int = 0
    closed: int = 0
    failed: int = 0
    batched: int = 0  # the batch read their delivery and wrote their documents and feedback
    totals: CloseTotals = Field(default_factory=CloseTotals)
    exceptions: list[ExceptionRecord] = Field(default_factory=list)  # at most EXCEPTION_SAMPLE
    exceptions_total: int = 0
    updates_sent: int = 0  # `close_period` updates sent (each an Action, accepted or refused)
    lines_in_hub: bool = False  # False: no hub on the worker, the lines were not kept
    # JSON bytes per engagement of the window's heaviest payload (the updates' facts in, the
    # outboxes out): the next window is sized from it to stay within the payload budget
    payload_bytes_per_engagement: int = 0

    def count(self, line: EngagementCloseLine) -> None:
        self.engagements += 1
        if line.ok:
            self.closed += 1
            self.batched += line.batched
            self.totals.add(line)
        else:
            self.failed += 1
        self.note_exceptions(line.exceptions, len(line.exceptions))

    def note_exceptions(self, found: list[ExceptionRecord], total: int) -> None:
        self.exceptions_total += total
        room = EXCEPTION_SAMPLE - len(self.exceptions)
        self.exceptions.extend(found[: max(room, 0)])

    def merge(self, other: CloseTally) -> None:
        self.engagements += other.engagements
        self.closed += other.closed
        self.failed += other.failed
        self.batched += other.batched
        self.totals.merge(other.totals)
        self.note_exceptions(other.exceptions, other.exceptions_total)
        self.updates_sent += other.updates_sent
        self.lines_in_hub = other.lines_in_hub
        self.payload_bytes_per_engagement = max(self.payload_bytes_per_engagement, other.payload_bytes_per_engagement)


class CloseWindowResult(BaseModel):
    """A window's outboxes for the batch to write (bounded by the window) and its tally."""

    outboxes: list[CloseOutbox] = Field(default_factory=list)
    tally: CloseTally = Field(default_factory=CloseTally)
    # With a stage: the outboxes are there; system (erp, crm, psa, hub) -> the engagements
    # whose outbox holds a write for it.
    staged: dict[str, list[str]] = Field(default_factory=dict)


class HandBackInput(BaseModel):
    """Outboxes the batch could not write: each engagement writes its own (`outbox_failed`);
    the close report's lines say why."""

    report_id: str
    failures: list[OutboxFailure] = Field(default_factory=list)
    # With a stage: the engagements refused (workflow id -> why), whose outboxes are there.
    stage: StagedWindow | None = None
    period: str | None = None
    refused: dict[str, str] = Field(default_factory=dict)


class HandBackResult(BaseModel):
    signalled: int


class CloseWindowRequest(BaseModel):
    """One window of a month-end (PeriodCloseWindowWorkflow): a page of engagements from
    `page_token`, their facts read, their periods closed, what they hand back written."""

    legal_entity: str
    period: str
    requested_by: str
    queues: TaskQueues
    report_id: str
    number: int  # 1, 2, ...
    size: int = Field(default=DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    page_token: str | None = None
    stage: StagedWindow | None = None  # set: the window's facts wait in the hub, its payloads carry ids


class CloseWindowSummary(BaseModel):
    number: int
    next_page_token: str | None = None  # None: the entity's last window
    tally: CloseTally = Field(default_factory=CloseTally)
    handed_back: int = 0  # engagements that write their own outbox (a system refused the batch's write)
    signals_sent: int = 0  # `outbox_failed` signals (each an Action)


class ReconcileInput(BaseModel):
    legal_entity: str
    period: str
    report_id: str | None = None  # the close's report: its entity-level exceptions are kept there
    exceptions: list[ExceptionRecord] = Field(default_factory=list)  # the final posting run's (a sample)


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
    CANCELLED = "CANCELLED"
    DELEGATED = "DELEGATED"  # a scheduled run that started the period's own close


class PeriodCloseRequest(BaseModel):
    legal_entity: str
    period: str | None = None  # None: the month before today (the monthly Schedule)
    requested_by: str = "system:schedule"
    queues: TaskQueues = Field(default_factory=TaskQueues)
    window: int = Field(default=DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)  # the most engagements closed at a time
    payload_budget_bytes: int = Field(default=PAYLOAD_BUDGET_BYTES, ge=16 * 1024, le=1536 * 1024)
    # The final posting run posts what the daily runs left: pages of 200 projects cost a
    # quarter of the Actions of the daily runs' 50, and the pages run one after another anyway.
    posting: PostingConfig = Field(default_factory=lambda: PostingConfig(projects_per_page=200))
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


# Who may stop a month-end before its lock: finance (the requester too: stopping locks
# nothing, so it needs no second person) and the integration admin who runs jobs.
CANCEL_ROLES = frozenset({"finance", "integration_admin"})


class CancelClose(BaseModel):
    by: str  # the authenticated subject (the API fills it in)
    roles: list[str]
    reason: str | None = None


class PeriodCloseReport(BaseModel):
    """The close as it stands, bounded whatever the entity's size: counts, totals and a
    sample of exceptions. One line per engagement and every exception are in the reporting
    hub under `report_id` (GET /v1/period-close/{entity}/{period}/engagements, /exceptions)."""

    workflow_id: str
    report_id: str  # `<workflow id>/<run id>`: a close started again after a failure has its own
    legal_entity: str
    period: str | None = None
    step: CloseStep = CloseStep.CUT_OFF
    requested_by: str
    cutoff: date | None = None
    posting: PostingResult | None = None  # its counts and an exception sample (no per-project totals)
    windows: int = 0
    engagements_total: int = 0
    engagements_closed: int = 0
    engagements_failed: int = 0
    engagements_batched: int = 0
    handed_back: int = 0
    totals: CloseTotals = Field(default_factory=CloseTotals)
    sync: SourceSyncResult | None = None
    reconciliation: ReconcileResult | None = None
    approval: Approval | None = None
    locked: bool = False
    cancelled_by: str | None = None
    lines_in_hub: bool = False
    exceptions: list[ExceptionRecord] = Field(default_factory=list)  # a sample (EXCEPTION_SAMPLE)
    exceptions_total: int = 0
    timeline: list[str] = Field(default_factory=list)


def next_window_size(widest: int, bytes_per_engagement: int, budget: int) -> int:
    """How many engagements the next window takes: as many as fit the payload budget at what
    the last window weighed per engagement, never more than `widest`, never below MIN_WINDOW."""
    if bytes_per_engagement <= 0:
        return min(widest, FIRST_WINDOW)
    return max(min(widest, MIN_WINDOW), min(widest, budget // bytes_per_engagement))


# Receipts older than this before a cut-off were read by earlier closes (known ids are
# ignored anyway); the month-end batch and an engagement closing on its own use the same.
RECEIPTS_LOOKBACK_DAYS = 62
