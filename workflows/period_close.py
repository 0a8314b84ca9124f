"""PeriodCloseWorkflow — id `close-<legal entity>-<period>`: month-end for one legal entity.

cut-off -> final posting run (child workflow) -> billing and revenue of every engagement in
delivery, a window at a time -> reconciliation (source sync child, then the hub) -> finance
approval to lock (four eyes) -> period locked in the ERP -> close report. Every step is
idempotent (closed engagement periods return their stored result, documents upsert by
external id, the lock is a state), so re-running a close is harmless.

Each window is a child workflow (workflows/period_close_window.py), so this history holds
one child per window and every payload is bounded by the window, not the firm: the report
it keeps and returns is a summary (counts, totals per currency, a sample of exceptions),
each engagement's line and every exception are in the hub's close report under
`report_id`. Windows are sized from what the previous one weighed per engagement, within
the request's payload budget. A finance person or the integration admin may cancel the
close before its lock; it stops at the next step or window.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.erp import LockPeriodInput, LockPeriodResult
    from contracts.ids import close_window_workflow_id, close_workflow_id, posting_workflow_id, sync_workflow_id
    from contracts.period_close import (
        CANCEL_ROLES,
        EXCEPTION_SAMPLE,
        CancelClose,
        CloseStep,
        CloseTally,
        CloseWindowRequest,
        LockDecision,
        PeriodCloseReport,
        PeriodCloseRequest,
        ReconcileInput,
        ReconcileResult,
        close_exception,
        next_window_size,
    )
    from contracts.posting import PostingInput, PostingResult
    from contracts.source_sync import SourceSyncInput
    from contracts.window_stage import StagedWindow
    from domain.approvals import check_decision, decided
    from domain.model import Approval, ApprovalDecision, ExceptionRecord
    from domain.periods import period_end, period_of
    from workflows.period_close_window import PeriodCloseWindowWorkflow, close_activity
    from workflows.posting import TimeAndExpensePostingWorkflow
    from workflows.source_sync import SourceSyncWorkflow

# Steps after which a close can no longer be cancelled (the lock is under way or done).
NOT_CANCELLABLE = {CloseStep.LOCKING, CloseStep.CLOSED, CloseStep.REJECTED, CloseStep.CANCELLED, CloseStep.DELEGATED}


# Pinned: a close can wait days for its approval; it finishes on the build it started on (its
# windows with it), so a new close or window shape ships as a new worker version without
# failing the replay of a close in flight (docs/operations.md, "Rolling out ...").
@workflow.defn(name="PeriodCloseWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class PeriodCloseWorkflow:
    @workflow.init
    def __init__(self, data: PeriodCloseRequest) -> None:
        info = workflow.info()
        self._r = PeriodCloseReport(
            workflow_id=info.workflow_id,
            report_id=f"{info.workflow_id}/{info.run_id}",
            legal_entity=data.legal_entity,
            period=data.period,
            requested_by=data.requested_by,
        )
        self._tally = CloseTally()
        self._cancel: CancelClose | None = None
        self._posting_exceptions: list[ExceptionRecord] = []

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
        if self._r.step != CloseStep.AWAITING_APPROVAL or self._cancel is not None:
            step = "being cancelled" if self._cancel is not None else f"at {self._r.step}"
            raise ValueError(f"the close is {step}, not awaiting approval")
        check_decision(self._r.approval, decision.by, set(decision.roles))
        differences = self._differences()
        if decision.approve and differences and not (decision.override_reason or "").strip():
            raise ValueError(
                f"reconciliation shows {differences} difference(s): locking over them needs an "
                "explicit override_reason (it is recorded in the audit log)"
            )

    @workflow.update(name=messages.CANCEL_CLOSE)
    def cancel_close(self, request: CancelClose) -> PeriodCloseReport:
        """Stop the month-end before its lock: it ends at the next step or window (a window
        or posting run under way finishes first), locking nothing."""
        self._cancel = request
        self._note(f"cancel requested by {request.by}" + (f": {request.reason}" if request.reason else ""))
        return self._r

    @cancel_close.validator
    def _validate_cancel(self, request: CancelClose) -> None:
        if self._r.step in NOT_CANCELLABLE:
            raise ValueError(f"the close is {self._r.step}: it can no longer be cancelled")
        if self._cancel is not None:
            raise ValueError(f"{self._cancel.by} has already cancelled this close")
        if not set(request.roles) & CANCEL_ROLES:
            raise ValueError(f"cancelling a close needs one of the roles {sorted(CANCEL_ROLES)}")

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
        for step in (self._final_posting, self._bill_engagements, self._reconcile):
            if self._cancel is None:
                await step(data, period)
        if self._cancel is None and await self._lock_approved(data, period):
            await self._lock(data, period)
            self._step(CloseStep.CLOSED, self._summary())
        if self._cancel is not None:
            self._cancelled(self._cancel)
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
        posted: PostingResult = await workflow.execute_child_workflow(
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
        progress = posted.progress
        # the report keeps the run's counts and a sample of its exceptions
        self._posting_exceptions = progress.exceptions[:100]
        r.posting = posted.model_copy(
            update={"progress": progress.model_copy(update={"exceptions": progress.exceptions[:EXCEPTION_SAMPLE]})}
        )
        self._exceptions(progress.exceptions, progress.exceptions_total)
        self._note(
            f"posted {progress.time_entries} time entries and {progress.expenses} expenses "
            f"({progress.exceptions_total} exceptions)"
        )

    async def _bill_engagements(self, data: PeriodCloseRequest, period: str) -> None:
        """Billing and revenue for every engagement in delivery, a window (child) at a time,
        each window as wide as the payload budget allows. With the hub, a window's facts wait
        there (its payloads carry ids), so every window is the widest from the first."""
        r = self._r
        self._step(CloseStep.BILLING, "finding the entity's engagements in delivery")
        token: str | None = None
        in_hub = data.queues.reporting is not None
        size = data.window if in_hub else next_window_size(data.window, 0, data.payload_budget_bytes)
        while self._cancel is None:
            number = r.windows + 1
            window = await workflow.execute_child_workflow(
                PeriodCloseWindowWorkflow.run,
                CloseWindowRequest(
                    legal_entity=data.legal_entity,
                    period=period,
                    requested_by=data.requested_by,
                    queues=data.queues,
                    report_id=r.report_id,
                    number=number,
                    size=size,
                    page_token=token,
                    stage=StagedWindow(report_id=r.report_id, window=number) if in_hub else None,
                ),
                id=close_window_workflow_id(data.legal_entity, period, number),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=(
                    f"Month-end {data.legal_entity} {period}, window {number}: "
                    f"up to {size} engagements after the first {r.engagements_total}"
                ),
            )
            r.windows = number
            r.handed_back += window.handed_back
            self._count(window.tally)
            workflow.set_current_details(f"**BILLING** — {r.engagements_total} engagements in {number} window(s)")
            size = next_window_size(data.window, window.tally.payload_bytes_per_engagement, data.payload_budget_bytes)
            token = window.next_page_token
            if token is None:
                break
        self._note(
            f"{r.engagements_closed} of {r.engagements_total} engagements billed and recognized in {r.windows} "
            f"window(s); {r.totals.invoices} invoices"
        )

    def _count(self, tally: CloseTally) -> None:
        """A window's tally into the close's: counts and totals, a sample of its exceptions."""
        r = self._r
        self._tally.merge(tally)
        r.engagements_total = self._tally.engagements
        r.engagements_closed = self._tally.closed
        r.engagements_failed = self._tally.failed
        r.engagements_batched = self._tally.batched
        r.totals = self._tally.totals
        r.lines_in_hub = self._tally.lines_in_hub
        self._exceptions(tally.exceptions, tally.exceptions_total)

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
        r.reconciliation = await close_activity(
            "close.reconcile",
            ReconcileInput(
                legal_entity=data.legal_entity,
                period=period,
                report_id=r.report_id,
                exceptions=self._posting_exceptions,
            ),
            ReconcileResult,
            workflow.info().task_queue,
            f"Reconcile {data.legal_entity} {period}",
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
            lambda: (
                self._cancel is not None
                or (r.approval is not None and r.approval.decision is not ApprovalDecision.PENDING)
            )
        )
        assert r.approval is not None
        if self._cancel is not None:
            return False
        if r.approval.decision is ApprovalDecision.REJECTED:
            self._step(CloseStep.REJECTED, "the lock was rejected; fix and start the close again")
            return False
        return True

    async def _lock(self, data: PeriodCloseRequest, period: str) -> None:
        """The period locked in the entity's ERP."""
        self._step(CloseStep.LOCKING, f"locking {period} in the ERP")
        lock: LockPeriodResult = await close_activity(
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
    def _cancelled(self, request: CancelClose) -> None:
        """Cancelled before the lock: an approval still open is withdrawn (decided, so nothing
        shows it pending), and the close ends CANCELLED."""
        r = self._r
        r.cancelled_by = request.by
        if r.approval is not None and r.approval.decision is ApprovalDecision.PENDING:
            r.approval = decided(r.approval, False, request.by, workflow.now(), "the close was cancelled")
        self._step(CloseStep.CANCELLED, f"cancelled by {request.by}; nothing was locked")

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
        """Counted in full; the report keeps a sample (every one is in the hub's close report)."""
        self._r.exceptions_total += total
        room = EXCEPTION_SAMPLE - len(self._r.exceptions)
        self._r.exceptions.extend(found[: max(room, 0)])

    def _step(self, step: CloseStep, note: str) -> None:
        self._r.step = step
        self._note(note)

    def _note(self, note: str) -> None:
        self._r.timeline.append(f"{workflow.now():%Y-%m-%d %H:%M} {self._r.step.value}: {note}")
        workflow.set_current_details(f"**{self._r.step.value}** — {note}")
