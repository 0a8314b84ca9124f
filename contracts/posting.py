"""TimeAndExpensePostingWorkflow's input, progress and result, and its activities' models."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from contracts.engagement import OverdueInvoice
from contracts.queues import TaskQueues
from domain.model import ExceptionRecord


class PostingConfig(BaseModel):
    time_mode: Literal["time_bill", "journal"] = "time_bill"  # time as NetSuite time bills or batch journals
    projects_per_page: int = Field(default=50, ge=1, le=200)
    journal_lines: int = Field(default=400, ge=1, le=1000)  # PSA records per batch journal
    max_exceptions: int = Field(default=100, ge=0)  # per page, in the result (all are counted)


class PostPageInput(BaseModel):
    run_id: str  # the posting workflow id: batch journal ids derive from it and the page
    page: int
    legal_entity: str
    cutoff: date
    posting_date: date
    after_project: str = ""
    config: PostingConfig = Field(default_factory=PostingConfig)


class PostPageResult(BaseModel):
    next_project: str | None  # None: no project after this page
    projects: int
    time_entries: int = 0
    expenses: int = 0
    hours: Decimal = Decimal(0)
    erp_records: int = 0  # time bills and journals written (or found already written)
    intercompany_charges: int = 0
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    exceptions_total: int = 0
    hub_rows: int | None = None  # None: no hub configured on this worker
    worker: str = ""


class PostingProgress(BaseModel):
    """The run so far (also what continue-as-new carries)."""

    posting_date: date | None = None
    cutoff: date | None = None
    page: int = 0
    after_project: str = ""
    projects: int = 0
    time_entries: int = 0
    expenses: int = 0
    hours: Decimal = Decimal(0)
    erp_records: int = 0
    intercompany_charges: int = 0
    exceptions_total: int = 0
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    pages_by_worker: dict[str, int] = Field(default_factory=dict)
    hub_rows: int | None = None
    overdue_invoices: int = 0  # fell due the day before and still open (the receivables sweep)
    done: bool = False


class PostingInput(BaseModel):
    legal_entity: str
    posting_date: date | None = None  # None: the day the run starts (Schedules)
    cutoff: date | None = None  # approved entries dated up to here; None: the posting date
    config: PostingConfig = Field(default_factory=PostingConfig)
    queues: TaskQueues = Field(default_factory=TaskQueues)
    sweep_overdue: bool = True
    heartbeat_seconds: int = 60
    carried: PostingProgress | None = None  # set only by continue-as-new


class PostingResult(BaseModel):
    workflow_id: str
    legal_entity: str
    progress: PostingProgress


class NotifyOverdueInput(BaseModel):
    """The day's overdue invoices, by opportunity: one `invoices_overdue` signal each."""

    as_of: date
    invoices: dict[str, list[OverdueInvoice]]


class NotifyOverdueResult(BaseModel):
    engagements_notified: int = 0
    not_running: int = 0
