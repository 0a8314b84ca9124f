"""Activities that talk to Temporal itself (and the hub) for posting runs and period close:
find an entity's engagements through visibility, close them a window at a time through
their `close_period` update, notify them of posted time, reconcile through the hub."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.posting import ProjectTotals
from domain.model import ExceptionRecord, record_id
from domain.money import Money
from workflows.engagement_models import PeriodCloseInput, PeriodResult, PostingNotice


class NotifyEngagementsInput(BaseModel):
    run_id: str
    posting_date: date
    totals: list[ProjectTotals]


class NotifyEngagementsResult(BaseModel):
    notified: int
    not_running: int  # projects with no running engagement (e.g. not booked through d2r)


class FindEngagementsInput(BaseModel):
    legal_entity: str


class EngagementList(BaseModel):
    workflow_ids: list[str]


class CloseWindowInput(BaseModel):
    period: str
    requested_by: str | None = None
    workflow_ids: list[str]


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


class CloseWindowResult(BaseModel):
    lines: list[EngagementCloseLine]


class ReconcileInput(BaseModel):
    legal_entity: str
    period: str


class ReconcileResult(BaseModel):
    status: str  # "clean" | "differences" | "skipped"
    differences: int = 0
    run_id: int | None = None
    detail: str | None = None


class CloseActivities:
    def __init__(self, client: Client, hub: Any | None = None) -> None:
        self._client = client
        self._hub = hub

    @activity.defn(name="posting.notify_engagements")
    async def notify_engagements(self, data: NotifyEngagementsInput) -> NotifyEngagementsResult:
        """One signal per engagement per run, with the run's aggregated totals."""
        by_engagement: dict[str, ProjectTotals] = {}
        for t in data.totals:
            if not t.opportunity_id:
                continue
            agg = by_engagement.setdefault(t.opportunity_id, ProjectTotals(project_id=t.project_id,
                                                                          opportunity_id=t.opportunity_id))
            agg.merge(t)
        gate = asyncio.Semaphore(20)

        async def one(opportunity_id: str, t: ProjectTotals) -> bool:
            async with gate:
                try:
                    await self._client.get_workflow_handle(f"engagement-{opportunity_id}").signal(
                        "postings_posted", PostingNotice(
                            run_id=data.run_id, posting_date=data.posting_date, time_entries=t.time_entries,
                            hours=t.hours, expenses=t.expenses, expense_amounts=t.expense_amounts))
                    return True
                except RPCError as error:
                    if error.status == RPCStatusCode.NOT_FOUND:
                        return False
                    raise

        done = await asyncio.gather(*(one(o, t) for o, t in sorted(by_engagement.items())))
        return NotifyEngagementsResult(notified=sum(done), not_running=len(done) - sum(done))

    @activity.defn(name="close.find_engagements")
    async def find_engagements(self, data: FindEngagementsInput) -> EngagementList:
        if not data.legal_entity.isalnum():
            raise ValueError("legal entity must be alphanumeric")
        query = (f"WorkflowType = 'EngagementWorkflow' AND D2RLegalEntity = '{data.legal_entity}' "
                 "AND D2RStage = 'IN_DELIVERY' AND ExecutionStatus = 'Running'")
        ids = sorted({wf.id async for wf in self._client.list_workflows(query)})
        return EngagementList(workflow_ids=ids)

    @activity.defn(name="close.close_engagements")
    async def close_engagements(self, data: CloseWindowInput) -> CloseWindowResult:
        """One window of engagements, closed concurrently; waits for every result."""

        async def one(workflow_id: str) -> EngagementCloseLine:
            handle = self._client.get_workflow_handle(workflow_id)
            try:
                result: PeriodResult = await handle.execute_update(
                    "close_period", PeriodCloseInput(period=data.period, requested_by=data.requested_by),
                    result_type=PeriodResult)
            except (WorkflowUpdateFailedError, RPCError) as error:
                cause = getattr(error, "cause", None) or error
                return EngagementCloseLine(workflow_id=workflow_id, ok=False, error=str(cause)[:500])
            finally:
                activity.heartbeat(workflow_id)
            return EngagementCloseLine(
                workflow_id=workflow_id, ok=True, invoices=len(result.invoices), billed=result.billed,
                recognized=result.recognized, deferred=result.deferred, unbilled=result.unbilled,
                exceptions=result.exceptions)

        lines = await asyncio.gather(*(one(w) for w in data.workflow_ids))
        return CloseWindowResult(lines=list(lines))

    @activity.defn(name="close.reconcile")
    async def reconcile(self, data: ReconcileInput) -> ReconcileResult:
        if self._hub is None:
            return ReconcileResult(status="skipped", detail="no reporting hub is configured on this worker")
        report = await self._hub.reconcile(data.period, data.legal_entity)
        differences = len(report.get("differences") or [])
        return ReconcileResult(status="clean" if differences == 0 else "differences", differences=differences,
                               run_id=report.get("run_id"),
                               detail=f"{report.get('projects_checked', 0)} projects checked")


def close_exception(legal_entity: str, period: str, code: str, message: str, on: date) -> ExceptionRecord:
    return ExceptionRecord(exception_id=record_id("exc", "close", legal_entity, period, code), code=code,
                           message=message, source_id=f"{legal_entity}:{period}", raised_on=on)
