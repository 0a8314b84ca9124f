"""Master-data sync workflows' inputs, progress and results, and their activities' models
(workflows/master_data*.py, activities/master_data.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.queues import TaskQueues

MAX_CONFLICTS_KEPT = 100  # per run, in the result; every conflict is in the hub's exceptions


def customer_sync_schedule_id() -> str:
    return "d2r-master-data-customers-daily"


def consultant_sync_schedule_id(psa_instance: str) -> str:
    return f"d2r-master-data-consultants-daily-{psa_instance}"


def account_change_workflow_id(account_id: str, modified_at: str) -> str:
    """One workflow per account change (the webhook's fact): a change delivered twice starts once."""
    return f"master-data-account-{account_id}-{modified_at}"


def conflict_resolution_workflow_id(exception_id: int) -> str:
    return f"master-data-resolve-{exception_id}"


class SweepMark(BaseModel):
    """Where a sweep stands: the last record's modification time, ties broken by its id."""

    modified_at: datetime
    record_id: str


class SyncCounts(BaseModel):
    records: int = 0  # owner records read
    downstream: int = 0  # downstream records compared (one per ERP instance/company holding it)
    written: int = 0  # downstream records written (owner changes propagated)
    in_step: int = 0  # downstream records that already held the owner's values
    conflicts: int = 0  # master_data.conflict exceptions opened (or seen again)
    duplicates: int = 0  # master_data.duplicate exceptions opened (or seen again)
    created: int = 0  # derived records created (ERP employees)
    refused: int = 0  # derived records the downstream system refused for good

    def add(self, other: SyncCounts) -> None:
        for name in SyncCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ConflictNote(BaseModel):
    """A conflict as the run's result shows it (the hub's exception holds the whole story)."""

    kind: str  # master_data.conflict | master_data.duplicate
    key: str
    field: str
    message: str
    exception_id: int | None = None  # None: no hub configured on the worker


# ---- customers: CRM -> every ERP instance that has the customer -------------------------------


class CustomerSyncInput(BaseModel):
    # the accounts a CRM event named (a webhook-driven run: one page); empty: a sweep
    account_ids: list[str] = Field(default_factory=list, max_length=200)
    after: SweepMark | None = None  # None: the last completed run's mark (Schedules), else from the start
    page_size: int = Field(default=100, ge=1, le=200)
    queues: TaskQueues = Field(default_factory=TaskQueues)
    carried: CustomerSyncProgress | None = None  # set only by continue-as-new


class CustomerSyncProgress(BaseModel):
    page: int = 0
    after: SweepMark | None = None
    counts: SyncCounts = Field(default_factory=SyncCounts)
    conflicts: list[ConflictNote] = Field(default_factory=list)
    done: bool = False


class CustomerSyncResult(BaseModel):
    workflow_id: str
    mark: SweepMark | None  # the next sweep starts after this
    pages: int
    counts: SyncCounts
    conflicts: list[ConflictNote] = Field(default_factory=list)


class CustomerPageInput(BaseModel):
    run_id: str
    page: int
    account_ids: list[str] = Field(default_factory=list)
    after: SweepMark | None = None
    limit: int = 100


class CustomerPageResult(BaseModel):
    next_after: SweepMark | None  # None: no account after this page
    counts: SyncCounts
    conflicts: list[ConflictNote] = Field(default_factory=list)


# ---- consultants: PSA -> ERP employees --------------------------------------------------------


class ConsultantSyncInput(BaseModel):
    psa_instance: str = "default"
    after: SweepMark | None = None
    page_size: int = Field(default=100, ge=1, le=200)
    queues: TaskQueues = Field(default_factory=TaskQueues)
    carried: ConsultantSyncProgress | None = None


class ConsultantSyncProgress(BaseModel):
    page: int = 0
    after: SweepMark | None = None
    counts: SyncCounts = Field(default_factory=SyncCounts)
    done: bool = False


class ConsultantSyncResult(BaseModel):
    workflow_id: str
    psa_instance: str
    mark: SweepMark | None
    pages: int
    counts: SyncCounts


class ConsultantPageInput(BaseModel):
    psa_instance: str
    after: SweepMark | None = None
    limit: int = 100


class ConsultantPageResult(BaseModel):
    next_after: SweepMark | None
    counts: SyncCounts


# ---- projects: PSA -> the ERP's project dimension --------------------------------------------


def project_sync_schedule_id(psa_instance: str) -> str:
    return f"d2r-master-data-projects-daily-{psa_instance}"


class ProjectSyncInput(BaseModel):
    psa_instance: str = "default"
    after: SweepMark | None = None
    page_size: int = Field(default=100, ge=1, le=200)
    queues: TaskQueues = Field(default_factory=TaskQueues)
    carried: ProjectSyncProgress | None = None


class ProjectSyncProgress(BaseModel):
    page: int = 0
    after: SweepMark | None = None
    counts: SyncCounts = Field(default_factory=SyncCounts)
    done: bool = False


class ProjectSyncResult(BaseModel):
    workflow_id: str
    psa_instance: str
    mark: SweepMark | None
    pages: int
    counts: SyncCounts


class ProjectPageInput(BaseModel):
    psa_instance: str
    after: SweepMark | None = None
    limit: int = 100


class ProjectPageResult(BaseModel):
    next_after: SweepMark | None
    counts: SyncCounts
    refused: list[str] = Field(default_factory=list)  # "<project id>: why", at most a page's worth


# ---- a person resolves a conflict -----------------------------------------------------------------


class ResolveConflictInput(BaseModel):
    exception_id: int
    keep: Literal["owner", "other"]  # the owner's value downstream, or the other system's value back into the owner
    resolved_by: str
    note: str | None = None
    queues: TaskQueues = Field(default_factory=TaskQueues)


class ResolveConflictResult(BaseModel):
    exception_id: int
    field: str
    kept: Literal["owner", "other"]
    value: str | None  # what both systems hold now
    written_to: str  # "<system>:<instance>:<record>"


CustomerSyncInput.model_rebuild()
ConsultantSyncInput.model_rebuild()
ProjectSyncInput.model_rebuild()
