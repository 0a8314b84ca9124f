"""SourceSyncWorkflow's input, progress and result, and its activities' models."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from contracts.queues import TaskQueues


class SyncPsaPageInput(BaseModel):
    sync_key: str  # the sync run's stage key
    legal_entity: str
    period: str
    page: int
    after_project: str = ""
    projects_per_page: int = Field(default=100, ge=1, le=200)


class SyncPsaPageResult(BaseModel):
    skipped: bool = False  # no hub on this worker
    project_ids: list[str] = Field(default_factory=list)  # the page's projects (the ERP page reads these)
    next_project: str | None = None  # None: the last page
    projects_with_time: int = 0
    hours: Decimal = Decimal(0)
    time_amount: Decimal = Decimal(0)
    records: int = 0


class SyncErpTimePageInput(BaseModel):
    sync_key: str
    legal_entity: str
    period: str
    page: int
    project_ids: list[str]


class SyncErpEntityInput(BaseModel):
    sync_key: str
    legal_entity: str
    period: str


class SyncErpResult(BaseModel):
    skipped: bool = False
    projects: int = 0
    hours: Decimal = Decimal(0)
    records: int = 0
    journals: int = 0  # posting journals read (entity extract)
    invoice_totals: dict[str, Decimal] = Field(default_factory=dict)  # currency -> total (entity extract)
    invoices: int = 0


class SyncCommitInput(BaseModel):
    sync_key: str
    legal_entity: str
    period: str


class SyncCommitResult(BaseModel):
    skipped: bool = False
    projects: dict[str, int] = Field(default_factory=dict)  # source -> projects written


class SyncReconcileInput(BaseModel):
    legal_entity: str
    period: str


class SyncReconcileResult(BaseModel):
    status: Literal["clean", "differences", "nothing_to_reconcile", "skipped"]
    run_id: int | None = None
    projects_checked: int = 0
    differences: int = 0
    by_metric: dict[str, int] = Field(default_factory=dict)


class SyncCrmInput(BaseModel):
    sync_key: str
    legal_entity: str
    period: str


class SyncCrmResult(BaseModel):
    skipped: bool = False
    projects: int = 0
    booking_totals: dict[str, Decimal] = Field(default_factory=dict)  # currency -> closed-won value
    unlinked: list[str] = Field(default_factory=list)  # closed-won deals with no project


class SyncProgress(BaseModel):
    """The run so far (also what continue-as-new carries)."""

    sync_key: str = ""
    page: int = 0
    after_project: str = ""
    psa_done: bool = False
    projects: int = 0
    psa_projects_with_time: int = 0
    psa_hours: Decimal = Decimal(0)
    psa_time_amount: Decimal = Decimal(0)
    psa_records: int = 0
    erp_time_bill_hours: Decimal = Decimal(0)
    erp_time_bills: int = 0
    erp_entity: SyncErpResult | None = None


class SourceSyncInput(BaseModel):
    """Sync one legal entity and period (`period` None: the current and the previous month,
    each as a child run — what the Schedule starts).

    The period close runs it as a child right before reconciling:
        await workflow.execute_child_workflow(
            SourceSyncWorkflow.run,
            SourceSyncInput(legal_entity=entity, period=period, queues=data.queues),
            id=sync_workflow_id(entity, period, "close"), result_type=SourceSyncResult)
    """

    legal_entity: str
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    queues: TaskQueues = Field(default_factory=TaskQueues)
    projects_per_page: int = Field(default=100, ge=1, le=200)
    reconcile: bool = False  # also run the hub's reconciliation after the commit
    carried: SyncProgress | None = None  # set only by continue-as-new


class SourceSyncResult(BaseModel):
    workflow_id: str
    legal_entity: str
    period: str | None = None
    status: str = "synced"  # synced | skipped (no hub on the workers) | scheduled (children below)
    progress: SyncProgress = Field(default_factory=SyncProgress)
    committed: dict[str, int] = Field(default_factory=dict)  # source -> projects in the hub's totals
    reconciliation: SyncReconcileResult | None = None
    crm: SyncCrmResult | None = None
    periods: list[SourceSyncResult] = Field(default_factory=list)  # a scheduled run's children
    notes: list[str] = Field(default_factory=list)
