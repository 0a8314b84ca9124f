"""Activities that talk to Temporal itself (and the hub) for posting runs and period close:
find an entity's engagements through visibility, close them a window at a time through
their `close_period` update, notify them of posted time, reconcile through the hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.crm import CrmFeedbackActivities
from activities.erp import ErpBillingActivities
from activities.psa import PsaDeliveryActivities
from activities.reporting import ReportingActivities
from connectors.ports import ReceivablesPort
from contracts.engagement import (
    CloseOutbox,
    EngagementCloseInput,
    OutboxFailure,
    OverdueInvoice,
    OverdueNotice,
    PaymentNotice,
    PeriodResult,
    PostingNotice,
)
from contracts.ids import engagement_workflow_id, opportunity_of
from contracts.memo import BATCH_MEMO
from contracts.period_close import (
    RECEIPTS_LOOKBACK_DAYS,
    CloseWindowInput,
    CloseWindowResult,
    EngagementCloseLine,
    EngagementList,
    EngagementTarget,
    FindEngagementsInput,
    ReconcileInput,
    ReconcileResult,
)
from contracts.posting import (
    NotifyEngagementsInput,
    NotifyEngagementsResult,
    ProjectTotals,
    SweepOverdueInput,
    SweepOverdueResult,
)
from domain.billing import Delivery
from domain.periods import period_end


@dataclass
class CloseBatch:
    """The system calls a batched month-end makes for a window of engagements: the same
    idempotent writes the engagements' own activities make, without an Action each."""

    psa: PsaDeliveryActivities
    erp: ErpBillingActivities
    crm: CrmFeedbackActivities
    receivables: Callable[[str], ReceivablesPort]  # legal entity -> its ERP's receivables
    hub: ReportingActivities | None = None
    concurrency: int = 8
    receipts_lookback_days: int = RECEIPTS_LOOKBACK_DAYS


class CloseActivities:
    def __init__(self, client: Client, hub: Any | None = None, batch: CloseBatch | None = None) -> None:
        self._client = client
        self._hub = hub
        self._batch = batch

    @activity.defn(name="posting.notify_engagements")
    async def notify_engagements(self, data: NotifyEngagementsInput) -> NotifyEngagementsResult:
        """One signal per engagement per run, with the run's aggregated totals."""
        by_engagement: dict[str, ProjectTotals] = {}
        for t in data.totals:
            if not t.opportunity_id:
                continue
            agg = by_engagement.setdefault(
                t.opportunity_id, ProjectTotals(project_id=t.project_id, opportunity_id=t.opportunity_id)
            )
            agg.merge(t)
        gate = asyncio.Semaphore(20)

        async def one(opportunity_id: str, t: ProjectTotals) -> bool:
            async with gate:
                try:
                    await self._client.get_workflow_handle(engagement_workflow_id(opportunity_id)).signal(
                        "postings_posted",
                        PostingNotice(
                            run_id=data.run_id,
                            posting_date=data.posting_date,
                            time_entries=t.time_entries,
                            hours=t.hours,
                            expenses=t.expenses,
                            expense_amounts=t.expense_amounts,
                        ),
                    )
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
        query = (
            f"WorkflowType = 'EngagementWorkflow' AND D2RLegalEntity = '{data.legal_entity}' "
            "AND D2RStage = 'IN_DELIVERY' AND ExecutionStatus = 'Running'"
        )
        targets: dict[str, EngagementTarget] = {}
        async for wf in self._client.list_workflows(query):
            memo = await wf.memo_value(BATCH_MEMO, None)
            targets[wf.id] = EngagementTarget(workflow_id=wf.id, legal_entity=data.legal_entity, **(memo or {}))
        ids = sorted(targets)
        return EngagementList(workflow_ids=ids, targets=[targets[i] for i in ids])

    @activity.defn(name="close.close_engagements")
    async def close_engagements(self, data: CloseWindowInput) -> CloseWindowResult:
        """One window of engagements, closed concurrently; waits for every result."""

        if data.targets and self._batch is not None:
            return await self._close_batched(data, self._batch)

        async def one(workflow_id: str) -> EngagementCloseLine:
            handle = self._client.get_workflow_handle(workflow_id)
            try:
                result: PeriodResult = await handle.execute_update(
                    "close_period",
                    EngagementCloseInput(period=data.period, requested_by=data.requested_by),
                    result_type=PeriodResult,
                )
            except (WorkflowUpdateFailedError, RPCError) as error:
                cause = getattr(error, "cause", None) or error
                return EngagementCloseLine(workflow_id=workflow_id, ok=False, error=str(cause)[:500])
            finally:
                activity.heartbeat(workflow_id)
            return EngagementCloseLine(
                workflow_id=workflow_id,
                ok=True,
                invoices=len(result.invoices),
                billed=result.billed,
                recognized=result.recognized,
                deferred=result.deferred,
                unbilled=result.unbilled,
                exceptions=result.exceptions,
            )

        lines = await asyncio.gather(*(one(w) for w in data.workflow_ids))
        return CloseWindowResult(lines=list(lines))

    async def _close_batched(self, data: CloseWindowInput, batch: CloseBatch) -> CloseWindowResult:
        """Read each engagement's delivery (PSA) and receipts (ERP) up to the cut-off, close
        its period through one update, write what it returns (ERP documents, CRM and PSA
        feedback, hub facts). A write that fails for good goes back to the engagement."""
        cutoff = period_end(data.period)
        gate = asyncio.Semaphore(batch.concurrency)
        overdue = await self._open_past_due(data.targets, cutoff, batch)
        deliveries: dict[str, Delivery] = {}
        for entity in sorted({t.legal_entity for t in data.targets if t.lines and t.project_id and t.legal_entity}):
            projects = {
                t.project_id: t.lines for t in data.targets if t.legal_entity == entity and t.project_id and t.lines
            }
            deliveries.update(await batch.psa.read_deliveries(entity, projects, cutoff))

        async def one(target: EngagementTarget) -> EngagementCloseLine:
            async with gate:
                try:
                    return await self._close_one(target, data, cutoff, batch, overdue, deliveries)
                finally:
                    activity.heartbeat(target.workflow_id)

        lines = await asyncio.gather(*(one(t) for t in data.targets))
        return CloseWindowResult(lines=list(lines))

    @staticmethod
    async def _open_past_due(
        targets: list[EngagementTarget], cutoff: date, batch: CloseBatch
    ) -> dict[str, list[OverdueInvoice]]:
        """d2r invoices due by the cut-off and still open in the ERP, by opportunity."""
        out: dict[str, list[OverdueInvoice]] = {}
        for entity in sorted({t.legal_entity for t in targets if t.lines and t.legal_entity}):
            due = await batch.receivables(entity).open_items_due(entity, cutoff - timedelta(days=730), cutoff)
            for item in due or []:
                out.setdefault(item.opportunity_id, []).append(
                    OverdueInvoice(
                        invoice_id=item.invoice_id, due_date=item.due_date, amount_remaining=item.amount_remaining
                    )
                )
        return out

    async def _close_one(
        self,
        target: EngagementTarget,
        data: CloseWindowInput,
        cutoff: date,
        batch: CloseBatch,
        overdue: dict[str, list[OverdueInvoice]],
        deliveries: dict[str, Delivery],
    ) -> EngagementCloseLine:
        handle = self._client.get_workflow_handle(target.workflow_id)
        request = EngagementCloseInput(period=data.period, requested_by=data.requested_by)
        if target.lines and target.project_id and target.legal_entity:
            delivery = deliveries.get(target.project_id)
            if delivery is None:
                return EngagementCloseLine(
                    workflow_id=target.workflow_id, ok=False, error=f"project {target.project_id} is not in the PSA"
                )
            receipts = []
            if target.erp_customer_id:
                found = await batch.receivables(target.legal_entity).receipts(
                    target.erp_customer_id,
                    cutoff - timedelta(days=batch.receipts_lookback_days),
                    cutoff,
                    opportunity_of(target.workflow_id),
                )
                receipts = [
                    PaymentNotice(
                        payment_id=r.payment_id, invoice_id=r.invoice_id, amount=r.amount, received_on=r.received_on
                    )
                    for r in found
                ]
            request = request.model_copy(
                update={
                    "delivery": delivery,
                    "payments": receipts,
                    "outbox": True,
                    "overdue": overdue.get(opportunity_of(target.workflow_id), []),
                }
            )
        try:
            result: PeriodResult = await handle.execute_update("close_period", request, result_type=PeriodResult)
        except (WorkflowUpdateFailedError, RPCError) as error:
            cause = getattr(error, "cause", None) or error
            return EngagementCloseLine(workflow_id=target.workflow_id, ok=False, error=str(cause)[:500])
        line = EngagementCloseLine(
            workflow_id=target.workflow_id,
            ok=True,
            invoices=len(result.invoices),
            billed=result.billed,
            recognized=result.recognized,
            deferred=result.deferred,
            unbilled=result.unbilled,
            exceptions=result.exceptions,
            batched=result.outbox is not None,
        )
        if result.outbox is not None:
            refused = await self._write_outbox(result.outbox, batch)
            if refused is not None:
                line.outbox_error = refused
                await handle.signal(
                    "outbox_failed", OutboxFailure(period=data.period, outbox=result.outbox, error=refused)
                )
        return line

    @staticmethod
    async def _write_outbox(outbox: CloseOutbox, batch: CloseBatch) -> str | None:
        """Every write is idempotent (external ids), so a retried window repeats them safely.
        Transient trouble raises (the window retries); a refusal is returned."""
        try:
            if outbox.erp is not None:
                await batch.erp.post_documents(outbox.erp)
            if outbox.crm is not None:
                await batch.crm.write_billing_status(outbox.crm)
            if outbox.psa is not None:
                await batch.psa.feedback(outbox.psa)
            if outbox.hub is not None and batch.hub is not None:
                await batch.hub.record_engagement(outbox.hub)
        except ApplicationError as error:
            if not error.non_retryable:
                raise
            return f"{error.type}: {error.message}"[:500]
        return None

    @activity.defn(name="receivables.sweep_overdue")
    async def sweep_overdue(self, data: SweepOverdueInput) -> SweepOverdueResult:
        """The day's collection risk from the ERP's open items: d2r invoices that fell due in
        the last `lookback_days` days and are still open; one signal per engagement."""
        if self._batch is None:
            return SweepOverdueResult(skipped="no ERP receivables configured on this worker")
        items = await self._batch.receivables(data.legal_entity).open_items_due(
            data.legal_entity, data.as_of - timedelta(days=data.lookback_days), data.as_of - timedelta(days=1)
        )
        if items is None:
            return SweepOverdueResult(skipped=f"no subsidiary {data.legal_entity} in the ERP")
        by_opportunity: dict[str, list[OverdueInvoice]] = {}
        for item in items:
            by_opportunity.setdefault(item.opportunity_id, []).append(
                OverdueInvoice(
                    invoice_id=item.invoice_id, due_date=item.due_date, amount_remaining=item.amount_remaining
                )
            )
        notified = 0
        for opportunity_id, invoices in sorted(by_opportunity.items()):
            try:
                await self._client.get_workflow_handle(engagement_workflow_id(opportunity_id)).signal(
                    "invoices_overdue", OverdueNotice(as_of=data.as_of, invoices=invoices)
                )
                notified += 1
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
        return SweepOverdueResult(
            invoices=len(items), engagements_notified=notified, not_running=len(by_opportunity) - notified
        )

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
