"""Activities that talk to Temporal itself, for the month-end and the posting runs: find an
entity's engagements in delivery (visibility, a page at a time), execute a window's
`close_period` updates, hand back what the batch could not write, and signal engagements
about overdue invoices. They make no vendor call: workflows/period_close.py
reads and writes the systems through each system's own activities and queue. A Temporal
workflow cannot execute another workflow's update, hence this activity."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts import messages
from contracts import search_attributes as sa
from contracts.engagement import EngagementCloseInput, OverdueNotice, PeriodResult
from contracts.ids import engagement_workflow_id
from contracts.memo import BATCH_MEMO
from contracts.period_close import (
    ClosedEngagement,
    CloseWindowInput,
    CloseWindowResult,
    EngagementCloseLine,
    EngagementList,
    EngagementTarget,
    FindEngagementsInput,
    HandBackInput,
    HandBackResult,
    ReconcileInput,
    ReconcileResult,
)
from contracts.posting import (
    NotifyOverdueInput,
    NotifyOverdueResult,
)


class CloseActivities:
    def __init__(self, client: Client, hub: Any | None = None, concurrency: int = 20) -> None:
        self._client = client
        self._hub = hub
        self._gate = asyncio.Semaphore(concurrency)

    async def _signal(self, workflow_id: str, signal: str, arg: object) -> bool:
        """False when no such engagement runs (e.g. a project not booked through d2r)."""
        async with self._gate:
            try:
                await self._client.get_workflow_handle(workflow_id).signal(signal, arg)
                return True
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise

    @activity.defn(name="close.notify_overdue")
    async def notify_overdue(self, data: NotifyOverdueInput) -> NotifyOverdueResult:
        """The day's collection risk: one `invoices_overdue` signal per engagement."""
        done = await asyncio.gather(
            *(
                self._signal(
                    engagement_workflow_id(o), messages.INVOICES_OVERDUE, OverdueNotice(as_of=data.as_of, invoices=i)
                )
                for o, i in sorted(data.invoices.items())
            )
        )
        return NotifyOverdueResult(engagements_notified=sum(done), not_running=len(done) - sum(done))

    @activity.defn(name="close.find_engagements")
    async def find_engagements(self, data: FindEngagementsInput) -> EngagementList:
        """One page of the entity's engagements in delivery, with their batch memo."""
        if not data.legal_entity.isalnum():
            raise ValueError("legal entity must be alphanumeric")
        query = (
            f"WorkflowType = 'EngagementWorkflow' AND {sa.LEGAL_ENTITY.name} = '{data.legal_entity}' "
            f"AND {sa.STAGE.name} = 'IN_DELIVERY' AND ExecutionStatus = 'Running'"
        )
        token = base64.b64decode(data.page_token) if data.page_token else None
        page = self._client.list_workflows(query, page_size=data.page_size, next_page_token=token)
        await page.fetch_next_page()
        targets = []
        for wf in page.current_page or []:
            memo = await wf.memo_value(BATCH_MEMO, None)
            targets.append(EngagementTarget(workflow_id=wf.id, legal_entity=data.legal_entity, **(memo or {})))
        return EngagementList(
            targets=sorted(targets, key=lambda t: t.workflow_id),
            next_page_token=base64.b64encode(page.next_page_token).decode() if page.next_page_token else None,
        )

    @activity.defn(name="close.close_engagements")
    async def close_engagements(self, data: CloseWindowInput) -> CloseWindowResult:
        """One window's `close_period` updates, concurrently; waits for every result."""

        async def one(workflow_id: str, request: EngagementCloseInput) -> ClosedEngagement:
            try:
                async with self._gate:
                    result: PeriodResult = await self._client.get_workflow_handle(workflow_id).execute_update(
                        messages.CLOSE_PERIOD, request, result_type=PeriodResult
                    )
            except (WorkflowUpdateFailedError, RPCError) as error:
                cause = getattr(error, "cause", None) or error
                return ClosedEngagement(
                    line=EngagementCloseLine(workflow_id=workflow_id, ok=False, error=str(cause)[:500])
                )
            finally:
                activity.heartbeat(workflow_id)
            line = EngagementCloseLine(
                workflow_id=workflow_id,
                ok=True,
                invoices=len(result.invoices),
                billed=result.billed,
                recognized=result.recognized,
                deferred=result.deferred,
                unbilled=result.unbilled,
                exceptions=result.exceptions,
                batched=result.outbox is not None,
            )
            return ClosedEngagement(line=line, outbox=result.outbox)

        closed = await asyncio.gather(*(one(w, r) for w, r in sorted(data.requests.items())))
        return CloseWindowResult(closed=list(closed))

    @activity.defn(name="close.hand_back")
    async def hand_back(self, data: HandBackInput) -> HandBackResult:
        """Outboxes the batch could not write go back to their engagements (`outbox_failed`)."""
        done = await asyncio.gather(
            *(self._signal(f.outbox.workflow_id, messages.OUTBOX_FAILED, f) for f in data.failures)
        )
        return HandBackResult(signalled=sum(done))

    @activity.defn(name="close.reconcile")
    async def reconcile(self, data: ReconcileInput) -> ReconcileResult:
        if self._hub is None:
            return ReconcileResult(status="skipped", detail="no reporting hub is configured on this worker")
        report = await self._hub.reconcile(data.period, data.legal_entity)
        differences = len(report.get("differences") or [])
        return ReconcileResult(
            status=report["status"],  # "nothing_to_reconcile" when no project was compared
            differences=differences,
            run_id=report.get("run_id"),
            detail=f"{report.get('projects_checked', 0)} projects checked",
        )
