"""PeriodCloseWorkflow — id `close-<legal entity>-<period>`: month-end for one legal entity.

cut-off -> final posting run (child workflow) -> billing and revenue run of every engagement
in delivery (their `close_period` update, a bounded window at a time, each result awaited)
-> reconciliation (hub) -> finance approval to lock (four eyes) -> period locked in the ERP
-> close report. Every step is idempotent (closed engagement periods return their stored
result, postings upsert, the lock is a state), so re-running a close is harmless.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts.erp import LockPeriodInput, LockPeriodResult
    from contracts.ids import close_workflow_id, sync_workflow_id
    from contracts.period_close import (
        CloseStep,
        CloseWindowInput,
        CloseWindowResult,
        EngagementList,
        EngagementTarget,
        FindEngagementsInput,
        LockDecision,
        PeriodCloseReport,
        PeriodCloseRequest,
        ReconcileInput,
        ReconcileResult,
        close_exception,
    )
    from contracts.posting import PostingInput
    from contracts.retry import VENDOR_ATTEMPTS, retry_policy
    from contracts.source_sync import SourceSyncInput
    from domain.approvals import check_decision, decided
    from domain.model import Approval, ApprovalDecision, ExceptionRecord
    from domain.periods import period_end, period_of
    from workflows.posting import TimeAndExpensePostingWorkflow
    from workflows.source_sync import SourceSyncWorkflow

RETRY = retry_policy(VENDOR_ATTEMPTS)
MAX_EXCEPTIONS = 500


@workflow.defn(name="PeriodCloseWorkflow")
class PeriodCloseWorkflow:
    @workflow.init
    def __init__(self, data: PeriodCloseRequest) -> None:
        self._r = PeriodCloseReport(
            workflow_id=workflow.info().workflow_id,
            legal_entity=data.legal_entity,
            period=data.period,
            requested_by=data.requested_by,
        )

    @workflow.query(name="report")
    def report(self) -> PeriodCloseReport:
        return self._r

    @workflow.update(name="approve_lock")
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
        r = self._r
        period = data.period or period_of(workflow.now().date().replace(day=1) - timedelta(days=1))
        r.period = period
        if data.period is None:  # a Schedule's run: start the period's own close and end
            return await self._delegate(data, period, close_workflow_id(data.legal_entity, period))

        # 1. cut-off: nothing dated after the period's end belongs to it.
        try:
            r.cutoff = period_end(period)
        except ValueError as error:  # no month: fail this close on purpose, never its task
            message = f"{period} is not a month: {error}"
            raise ApplicationError(message, type="InvalidPeriod", non_retryable=True) from error
        self._note(f"cut-off at {r.cutoff} for {data.legal_entity} {period}, requested by {data.requested_by}")

        # 2. the final posting run, as a child with its own business id and history.
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
            id=f"posting-{data.legal_entity}-{period}-close",
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Final posting run for {data.legal_entity} {period}",
        )
        progress = r.posting.progress
        self._exceptions(progress.exceptions, progress.exceptions_total)
        self._note(
            f"posted {progress.time_entries} time entries and {progress.expenses} expenses "
            f"({progress.exceptions_total} exceptions)"
        )

        # 3. billing and revenue for every engagement in delivery, a window at a time.
        self._step(CloseStep.BILLING, "finding the entity's engagements in delivery")
        found: EngagementList = await workflow.execute_activity(
            "close.find_engagements",
            FindEngagementsInput(legal_entity=data.legal_entity),
            result_type=EngagementList,
            task_queue=workflow.info().task_queue,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
            summary=f"Engagements of {data.legal_entity} in delivery",
        )
        ids = found.workflow_ids
        targets = found.targets or [EngagementTarget(workflow_id=i) for i in ids]
        for start in range(0, len(targets), data.window):
            window = targets[start : start + data.window]
            workflow.set_current_details(f"**BILLING** — engagements {start + 1}-{start + len(window)} of {len(ids)}")
            result: CloseWindowResult = await workflow.execute_activity(
                "close.close_engagements",
                CloseWindowInput(
                    period=period,
                    requested_by=data.requested_by,
                    workflow_ids=[t.workflow_id for t in window],
                    targets=window,
                ),
                result_type=CloseWindowResult,
                task_queue=workflow.info().task_queue,
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
                summary=f"Close {period} for {len(window)} engagements",
            )
            for line in result.lines:
                r.engagements.append(line)
                if line.ok:
                    r.totals.add(line)
                    self._exceptions(line.exceptions, len(line.exceptions))
                else:
                    r.engagements_failed += 1
                    self._exceptions(
                        [
                            close_exception(
                                data.legal_entity,
                                period,
                                f"ENGAGEMENT_NOT_CLOSED:{line.workflow_id}",
                                f"{line.workflow_id} did not close {period}: {line.error}",
                                r.cutoff,
                            )
                        ],
                        1,
                    )
        self._note(
            f"{len(ids) - r.engagements_failed} of {len(ids)} engagements billed and recognized; "
            f"{r.totals.invoices} invoices"
        )

        # 4. reconciliation through the hub, against what the PSA and the ERP hold right now.
        self._step(CloseStep.RECONCILING, "reconciling PSA, ERP and hub")
        if workflow.patched("sync-before-reconcile"):
            r.sync = await workflow.execute_child_workflow(
                SourceSyncWorkflow.run,
                SourceSyncInput(legal_entity=data.legal_entity, period=period, queues=data.queues),
                id=sync_workflow_id(data.legal_entity, period, "close"),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=f"Extract PSA and ERP totals of {data.legal_entity} {period} for reconciliation",
            )
            self._note(f"source totals synced ({r.sync.status})")
        r.reconciliation = await workflow.execute_activity(
            "close.reconcile",
            ReconcileInput(legal_entity=data.legal_entity, period=period),
            result_type=ReconcileResult,
            task_queue=workflow.info().task_queue,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
            summary=f"Reconcile {data.legal_entity} {period}",
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

        # 5. a finance person (not the requester) approves the lock.
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
            await workflow.wait_condition(workflow.all_handlers_finished)
            return r

        # 6. lock the period in the entity's ERP.
        self._step(CloseStep.LOCKING, f"locking {period} in the ERP")
        lock: LockPeriodResult = await workflow.execute_activity(
            "erp.lock_period",
            LockPeriodInput(legal_entity=data.legal_entity, period=period),
            result_type=LockPeriodResult,
            task_queue=data.queues.erp,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
            summary=f"Lock accounting period {period}",
        )
        r.locked = True
        self._note(f"period {period} locked in the ERP" + ("" if lock.locked_now else " (it was locked already)"))

        # 7. the close report is this workflow's result (and its `report` query).
        self._step(CloseStep.CLOSED, self._summary())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return r

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
