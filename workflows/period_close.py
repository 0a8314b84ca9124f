"""PeriodCloseWorkflow — id `close-<legal entity>-<period>`: month-end for one legal entity.

cut-off -> final posting run (child workflow) -> billing and revenue of every engagement in
delivery, a window at a time -> reconciliation (source sync child, then the hub) -> finance
approval to lock (four eyes) -> period locked in the ERP -> close report. Every step is
idempotent (closed engagement periods return their stored result, documents upsert by
external id, the lock is a state), so re-running a close is harmless.

A window is a page of engagements (visibility, `window` at a time): their delivery read from
the PSA in bulk and their receipts and overdue invoices from the ERP, each engagement's
`close_period` update with those facts, then what the updates hand back written to the ERP,
the CRM, the PSA and the hub, each on its own system's queue; an engagement whose write was
refused for good writes its own. Every payload is bounded by the window, not the firm.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.crm import BillingStatusWindowInput
    from contracts.engagement import CloseOutbox, EngagementCloseInput, OutboxFailure, OverdueInvoice, PaymentNotice
    from contracts.erp import (
        LockPeriodInput,
        LockPeriodResult,
        OpenItemsInput,
        OpenItemsResult,
        PostDocumentsWindowInput,
        ReceiptsWindowInput,
        ReceiptsWindowResult,
        WindowWriteResult,
    )
    from contracts.ids import close_workflow_id, opportunity_of, posting_workflow_id, sync_workflow_id
    from contracts.period_close import (
        RECEIPTS_LOOKBACK_DAYS,
        CloseStep,
        CloseWindowInput,
        CloseWindowResult,
        EngagementCloseLine,
        EngagementList,
        EngagementTarget,
        FindEngagementsInput,
        HandBackInput,
        HandBackResult,
        LockDecision,
        PeriodCloseReport,
        PeriodCloseRequest,
        ReconcileInput,
        ReconcileResult,
        close_exception,
    )
    from contracts.posting import PostingInput
    from contracts.psa import DeliveriesResult, FeedbackWindowInput, ReadDeliveriesInput
    from contracts.reporting import RecordEngagementsInput
    from contracts.retry import VENDOR_ATTEMPTS, retry_policy
    from contracts.source_sync import SourceSyncInput
    from domain.approvals import check_decision, decided
    from domain.billing import Delivery
    from domain.model import Approval, ApprovalDecision, ExceptionRecord
    from domain.periods import period_end, period_of
    from workflows.posting import TimeAndExpensePostingWorkflow
    from workflows.source_sync import SourceSyncWorkflow

RETRY = retry_policy(VENDOR_ATTEMPTS)
MAX_EXCEPTIONS = 500
OVERDUE_LOOKBACK_DAYS = 730  # invoices due this long before a cut-off and still open are overdue


@workflow.defn(name="PeriodCloseWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PeriodCloseWorkflow:
    @workflow.init
    def __init__(self, data: PeriodCloseRequest) -> None:
        self._r = PeriodCloseReport(
            workflow_id=workflow.info().workflow_id,
            legal_entity=data.legal_entity,
            period=data.period,
            requested_by=data.requested_by,
        )

    @workflow.query(name=messages.REPORT)
    def report(self) -> PeriodCloseReport:
        return self._r

    @workflow.update(name=messages.APPROVE_LOCK)
    def approve_lock(self, decision: LockDecision) -> PeriodCloseReport:
        assert self._r.approval is not None
        self._r.approval = decided(self._r.approval, decision.approve, decision.by, workflow.now(), decision.comment)
        verb = "approved" if decision.approve else "rejected"
        differences = self._differences()
        if decision.approve and differences:
            verb += f" over {differences} reconciliation difference(s) ({decision.override_reason})"
        self._note(f"lock {verb} by {decision.by}" + (f": {decision.comment}" if decision.comment else ""))
        return self._r

    @approve_lock.validator
    def _validate_lock(self, decision: LockDecision) -> None:
        if self._r.step != CloseStep.AWAITING_APPROVAL:
            raise ValueError(f"the close is at {self._r.step}, not awaiting approval")
        check_decision(self._r.approval, decision.by, set(decision.roles))
        differences = self._differences()
        if decision.approve and differences and not (decision.override_reason or "").strip():
            raise ValueError(
                f"reconciliation shows {differences} difference(s): locking over them needs an "
                "explicit override_reason (it is recorded in the audit log)"
            )

    def _differences(self) -> int:
        rec = self._r.reconciliation
        return rec.differences if rec is not None and rec.status == "differences" else 0

    @workflow.run
    async def run(self, data: PeriodCloseRequest) -> PeriodCloseReport:
        period = data.period or period_of(workflow.now().date().replace(day=1) - timedelta(days=1))
        self._r.period = period
        if data.period is None:  # a Schedule's run: start the period's own close and end
            return await self._delegate(data, period, close_workflow_id(data.legal_entity, period))
        self._cut_off(data, period)
        await self._final_posting(data, period)
        await self._bill_engagements(data, period)
        await self._reconcile(data, period)
        if await self._lock_approved(data, period):
            await self._lock(data, period)
            self._step(CloseStep.CLOSED, self._summary())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._r

    # ---- the steps ----------------------------------------------------------------------------
    def _cut_off(self, data: PeriodCloseRequest, period: str) -> None:
        """Nothing dated after the period's end belongs to it."""
        try:
            self._r.cutoff = period_end(period)
        except ValueError as error:  # no month: fail this close on purpose, never its task
            message = f"{period} is not a month: {error}"
            raise ApplicationError(message, type="InvalidPeriod", non_retryable=True) from error
        self._note(f"cut-off at {self._r.cutoff} for {data.legal_entity} {period}, requested by {data.requested_by}")

    async def _final_posting(self, data: PeriodCloseRequest, period: str) -> None:
        """The final posting run, as a child with its own business id and history."""
        r = self._r
        assert r.cutoff is not None
        self._step(CloseStep.POSTING, "final time & expense posting run")
        r.posting = await workflow.execute_child_workflow(
            TimeAndExpensePostingWorkflow.run,
            PostingInput(
                legal_entity=data.legal_entity,
                posting_date=r.cutoff,
                cutoff=r.cutoff,
                config=data.posting,
                queues=data.queues,
                heartbeat_seconds=data.heartbeat_seconds,
            ),
            id=posting_workflow_id(data.legal_entity, f"{period}-close"),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Final posting run for {data.legal_entity} {period}",
        )
        progress = r.posting.progress
        self._exceptions(progress.exceptions, progress.exceptions_total)
        self._note(
            f"posted {progress.time_entries} time entries and {progress.expenses} expenses "
            f"({progress.exceptions_total} exceptions)"
        )

    async def _bill_engagements(self, data: PeriodCloseRequest, period: str) -> None:
        """Billing and revenue for every engagement in delivery, a page (window) at a time."""
        r = self._r
        self._step(CloseStep.BILLING, "finding the entity's engagements in delivery")
        token: str | None = None
        while True:
            page: EngagementList = await self._activity(
                "close.find_engagements",
                FindEngagementsInput(legal_entity=data.legal_entity, page_size=data.window, page_token=token),
                EngagementList,
                workflow.info().task_queue,
                f"Engagements of {data.legal_entity} in delivery (after {len(r.engagements)})",
            )
            if page.targets:
                start = len(r.engagements)
                workflow.set_current_details(f"**BILLING** — engagements {start + 1}-{start + len(page.targets)}")
                await self._close_window(data, period, page.targets)
            token = page.next_page_token
            if token is None:
                break
        closed = len(r.engagements) - r.engagements_failed
        self._note(f"{closed} of {len(r.engagements)} engagements billed and recognized; {r.totals.invoices} invoices")

    async def _close_window(self, data: PeriodCloseRequest, period: str, targets: list[EngagementTarget]) -> None:
        """Read the window's facts, close each engagement's period, write what they hand back."""
        cutoff = period_end(period)
        batched = [t for t in targets if t.batched]
        deliveries, receipts, overdue = await self._window_facts(data, cutoff, batched)
        requests: dict[str, EngagementCloseInput] = {}
        for t in targets:
            request = EngagementCloseInput(period=period, requested_by=data.requested_by)
            if t.batched and t.project_id in deliveries:
                opportunity = opportunity_of(t.workflow_id)
                request = request.model_copy(
                    update={
                        "delivery": deliveries[t.project_id or ""],
                        "payments": receipts.get(opportunity, []),
                        "overdue": overdue.get(opportunity, []),
                        "outbox": True,
                    }
                )
            elif t.batched:
                self._count_failure(data, period, t.workflow_id, f"project {t.project_id} is not in the PSA")
                continue
            requests[t.workflow_id] = request
        closed: CloseWindowResult = await self._activity(
            "close.close_engagements",
            CloseWindowInput(requests=requests),
            CloseWindowResult,
            workflow.info().task_queue,
            f"Close {period} for {len(requests)} engagements",
            timeout=timedelta(hours=2),
        )
        outboxes = [c.outbox for c in closed.closed if c.outbox is not None]
        refused = await self._write_outboxes(data, period, outboxes)
        for c in closed.closed:
            line = c.line
            line.outbox_error = refused.get(line.workflow_id)
            self._r.engagements.append(line)
            if line.ok:
                self._r.totals.add(line)
                self._exceptions(line.exceptions, len(line.exceptions))
            else:
                self._count_failure(data, period, line.workflow_id, line.error or "", appended=True)

    async def _window_facts(
        self, data: PeriodCloseRequest, cutoff: date, batched: list[EngagementTarget]
    ) -> tuple[dict[str, Delivery], dict[str, list[PaymentNotice]], dict[str, list[OverdueInvoice]]]:
        """The window's delivery (PSA, in bulk), receipts and invoices open past due (ERP)."""
        if not batched:
            return {}, {}, {}
        entity, queues = data.legal_entity, data.queues
        read: DeliveriesResult = await self._activity(
            "psa.read_deliveries",
            ReadDeliveriesInput(
                legal_entity=entity, projects={t.project_id or "": t.lines for t in batched}, cutoff=cutoff
            ),
            DeliveriesResult,
            queues.psa,
            f"Delivery of {len(batched)} projects up to {cutoff}",
        )
        customers = {opportunity_of(t.workflow_id): t.erp_customer_id for t in batched if t.erp_customer_id}
        found: ReceiptsWindowResult = await self._activity(
            "erp.receipts_window",
            ReceiptsWindowInput(
                legal_entity=entity,
                since=cutoff - timedelta(days=RECEIPTS_LOOKBACK_DAYS),
                through=cutoff,
                customers=customers,
            ),
            ReceiptsWindowResult,
            queues.erp,
            f"Receipts of {len(customers)} engagements up to {cutoff}",
        )
        due: OpenItemsResult = await self._activity(
            "erp.open_items_due",
            OpenItemsInput(
                legal_entity=entity,
                due_from=cutoff - timedelta(days=OVERDUE_LOOKBACK_DAYS),
                due_to=cutoff,
                opportunity_ids=sorted(opportunity_of(t.workflow_id) for t in batched),
            ),
            OpenItemsResult,
            queues.erp,
            f"Invoices of {len(batched)} engagements due by {cutoff} and still open",
        )
        receipts = {
            o: [
                PaymentNotice(
                    payment_id=x.payment_id, invoice_id=x.invoice_id, amount=x.amount, received_on=x.received_on
                )
                for x in found
            ]
            for o, found in found.receipts.items()
        }
        overdue: dict[str, list[OverdueInvoice]] = {}
        for item in due.items:
            overdue.setdefault(item.opportunity_id, []).append(
                OverdueInvoice(
                    invoice_id=item.invoice_id, due_date=item.due_date, amount_remaining=item.amount_remaining
                )
            )
        return read.deliveries, receipts, overdue

    async def _write_outboxes(
        self, data: PeriodCloseRequest, period: str, outboxes: list[CloseOutbox]
    ) -> dict[str, str]:
        """ERP documents first, then CRM and PSA feedback and the hub's facts, each system on its
        queue; an engagement refused by one system is left out of the next and writes its own."""
        queues = data.queues
        refused: dict[str, str] = {}

        async def write(activity: str, arg: object, queue: str | None, summary: str) -> None:
            if queue is None:
                return
            result: WindowWriteResult = await self._activity(activity, arg, WindowWriteResult, queue, summary)
            refused.update(result.refused)

        def pending() -> list[CloseOutbox]:
            return [o for o in outboxes if o.workflow_id not in refused]

        erp = {o.workflow_id: o.erp for o in pending() if o.erp is not None}
        if erp:
            await write(
                "erp.post_documents_window",
                PostDocumentsWindowInput(documents=erp),
                queues.erp,
                f"Post {period} documents of {len(erp)} engagements",
            )
        crm = {o.workflow_id: o.crm for o in pending() if o.crm is not None}
        if crm:
            await write(
                "crm.write_billing_status_window",
                BillingStatusWindowInput(statuses=crm),
                queues.crm,
                f"CRM billing status of {len(crm)} engagements",
            )
        psa = {o.workflow_id: o.psa for o in pending() if o.psa is not None}
        if psa:
            await write(
                "psa.feedback_window",
                FeedbackWindowInput(feedback=psa),
                queues.psa,
                f"PSA feedback of {len(psa)} engagements",
            )
        hub = {o.workflow_id: o.hub for o in pending() if o.hub is not None}
        if hub and queues.reporting is None:  # started without the hub's queue: they write their own
            refused.update({w: "the month-end has no reporting queue" for w in hub})
        elif hub:
            await write(
                "reporting.record_engagements",
                RecordEngagementsInput(records=hub),
                queues.reporting,
                f"Hub facts of {len(hub)} engagements",
            )
        if refused:
            await self._activity(
                "close.hand_back",
                HandBackInput(
                    failures=[
                        OutboxFailure(period=period, outbox=o, error=refused[o.workflow_id])
                        for o in outboxes
                        if o.workflow_id in refused
                    ]
                ),
                HandBackResult,
                workflow.info().task_queue,
                f"{len(refused)} engagements write their own {period} documents",
            )
        return refused

    async def _reconcile(self, data: PeriodCloseRequest, period: str) -> None:
        """Source totals synced from the PSA and the ERP (a child), then the hub reconciles."""
        r = self._r
        assert r.cutoff is not None
        self._step(CloseStep.RECONCILING, "reconciling PSA, ERP and hub")
        r.sync = await workflow.execute_child_workflow(
            SourceSyncWorkflow.run,
            SourceSyncInput(legal_entity=data.legal_entity, period=period, queues=data.queues),
            id=sync_workflow_id(data.legal_entity, period, "close"),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Extract PSA and ERP totals of {data.legal_entity} {period} for reconciliation",
        )
        self._note(f"source totals synced ({r.sync.status})")
        r.reconciliation = await self._activity(
            "close.reconcile",
            ReconcileInput(legal_entity=data.legal_entity, period=period),
            ReconcileResult,
            workflow.info().task_queue,
            f"Reconcile {data.legal_entity} {period}",
            timeout=timedelta(minutes=10),
        )
        if r.reconciliation.status == "differences":
            self._exceptions(
                [
                    close_exception(
                        data.legal_entity,
                        period,
                        "RECONCILIATION_DIFFERENCES",
                        f"{r.reconciliation.differences} differences (reconciliation run {r.reconciliation.run_id})",
                        r.cutoff,
                    )
                ],
                1,
            )
        self._note(
            f"reconciliation: {r.reconciliation.status}"
            + (f" ({r.reconciliation.detail})" if r.reconciliation.detail else "")
        )

    async def _lock_approved(self, data: PeriodCloseRequest, period: str) -> bool:
        """A finance person (not the requester) approves the lock."""
        r = self._r
        r.approval = Approval(
            approval_id=f"lock:{data.legal_entity}:{period}",
            subject=f"lock {data.legal_entity} {period}",
            requested_by=data.requested_by,
            requested_at=workflow.now(),
            approver_roles=data.approver_roles,
        )
        self._step(CloseStep.AWAITING_APPROVAL, f"waiting for {'/'.join(data.approver_roles)} to approve the lock")
        await workflow.wait_condition(
            lambda: r.approval is not None and r.approval.decision is not ApprovalDecision.PENDING
        )
        assert r.approval is not None
        if r.approval.decision is ApprovalDecision.REJECTED:
            self._step(CloseStep.REJECTED, "the lock was rejected; fix and start the close again")
            return False
        return True

    async def _lock(self, data: PeriodCloseRequest, period: str) -> None:
        """The period locked in the entity's ERP."""
        self._step(CloseStep.LOCKING, f"locking {period} in the ERP")
        lock: LockPeriodResult = await self._activity(
            "erp.lock_period",
            LockPeriodInput(legal_entity=data.legal_entity, period=period),
            LockPeriodResult,
            data.queues.erp,
            f"Lock accounting period {period}",
            timeout=timedelta(minutes=2),
        )
        self._r.locked = True
        self._note(f"period {period} locked in the ERP" + ("" if lock.locked_now else " (it was locked already)"))

    # ---- helpers ------------------------------------------------------------------------------
    def _activity(
        self,
        activity: str,
        arg: object,
        result_type: type,
        queue: str,
        summary: str,
        timeout: timedelta = timedelta(minutes=10),
    ) -> Any:
        """One activity with the close's retry policy (long ones heartbeat)."""
        return workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            task_queue=queue,
            start_to_close_timeout=timeout,
            heartbeat_timeout=timedelta(minutes=10) if timeout > timedelta(minutes=10) else None,
            retry_policy=RETRY,
            summary=summary,
        )

    def _count_failure(
        self, data: PeriodCloseRequest, period: str, workflow_id: str, error: str, appended: bool = False
    ) -> None:
        """An engagement that did not close: counted, and an exception for a person."""
        r = self._r
        assert r.cutoff is not None
        if not appended:
            r.engagements.append(EngagementCloseLine(workflow_id=workflow_id, ok=False, error=error))
        r.engagements_failed += 1
        self._exceptions(
            [
                close_exception(
                    data.legal_entity,
                    period,
                    f"ENGAGEMENT_NOT_CLOSED:{workflow_id}",
                    f"{workflow_id} did not close {period}: {error}",
                    r.cutoff,
                )
            ],
            1,
        )

    async def _delegate(self, data: PeriodCloseRequest, period: str, own_id: str) -> PeriodCloseReport:
        """A scheduled run (its id carries the Schedule's timestamp) starts the period's
        close under its business id `close-<entity>-<period>`; an existing close is left alone."""
        try:
            await workflow.start_child_workflow(
                PeriodCloseWorkflow.run,
                data.model_copy(update={"period": period}),
                id=own_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=f"Close {data.legal_entity} {period}",
            )
            self._step(CloseStep.DELEGATED, f"started {own_id}")
        except WorkflowAlreadyStartedError:
            self._step(CloseStep.DELEGATED, f"{own_id} exists already; left alone")
        return self._r

    def _summary(self) -> str:
        t = self._r.totals

        def fmt(d: dict[str, Decimal]) -> str:
            return ", ".join(f"{v} {k}" for k, v in sorted(d.items())) or "0"

        return (
            f"closed: billed {fmt(t.billed)}, recognized {fmt(t.recognized)}, deferred {fmt(t.deferred)}; "
            f"{self._r.exceptions_total} exceptions"
        )

    def _exceptions(self, found: list[ExceptionRecord], total: int) -> None:
        self._r.exceptions_total += total
        room = MAX_EXCEPTIONS - len(self._r.exceptions)
        self._r.exceptions.extend(found[: max(room, 0)])

    def _step(self, step: CloseStep, note: str) -> None:
        self._r.step = step
        self._note(note)

    def _note(self, note: str) -> None:
        self._r.timeline.append(f"{workflow.now():%Y-%m-%d %H:%M} {self._r.step.value}: {note}")
        workflow.set_current_details(f"**{self._r.step.value}** — {note}")
