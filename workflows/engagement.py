"""EngagementWorkflow: one booked deal, from the CRM's Closed Won to recognized revenue.

VALIDATING -> (AWAITING_APPROVAL) -> PROVISIONING -> IN_DELIVERY -> CLOSING -> CLOSED,
with NEEDS_ATTENTION reachable from any step: the deal then waits for a person.

`run` reads as the happy path; each stage is a method (provisioning and the change
sagas live in mixins beside this module); every stage change goes through `_to`, which
checks the transition table in `domain/stages.py`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts import search_attributes as sa
    from contracts.config import DealRulesInput, FinanceConfig, FinanceConfigInput
    from contracts.crm import ReadOpportunityInput
    from contracts.engagement import (
        AmendmentInput,
        CancelRequest,
        ChangeRecord,
        CreditMemoInput,
        DecisionInput,
        EngagementCloseInput,
        EngagementInput,
        EngagementState,
        EngagementView,
        MilestoneNotice,
        OutboxFailure,
        OverdueNotice,
        PaymentNotice,
        PeriodResult,
        ResumeRequest,
        WaitKind,
    )
    from contracts.psa import MarkBilled
    from contracts.reporting import (
        ExceptionRef,
        RaiseExceptionInput,
        ResolveExceptionInput,
        RetryingExceptionInput,
    )
    from domain.approvals import (
        ApprovalPolicy,
        check_decision,
        deal_approval_id,
        deal_approval_reasons,
        decided,
        withdrawn_with,
    )
    from domain.deal import DealRules, Engagement, OpportunitySnapshot, validate_deal
    from domain.model import Approval, ApprovalDecision
    from domain.periods import next_period, period_end, period_of
    from domain.stages import Stage, transition
    from workflows.engagement_changes import ChangeSteps
    from workflows.engagement_delivery import DeliverySteps
    from workflows.engagement_provisioning import ProvisioningSteps
    from workflows.engagement_support import LOCAL_CONFIG, VENDOR_RETRY, EngagementBase, shared_finance
    from workflows.engagement_view import readable
    from workflows.failures import BUSINESS_FAILURES, STEP_FAILURES, failure_reason
    from workflows.refusals import conflict, invalid_request


# Pinned: a run finishes on the build it started on (no patch branches); it moves to the
# current build at its next continue-as-new, below.
@workflow.defn(name="EngagementWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class EngagementWorkflow(ProvisioningSteps, DeliverySteps, ChangeSteps, EngagementBase):
    @workflow.init
    def __init__(self, data: EngagementInput) -> None:
        self._input = data
        self._s = data.carried or EngagementState(
            view=EngagementView(
                workflow_id=workflow.info().workflow_id, opportunity_id=data.opportunity_id, stage=Stage.VALIDATING
            )
        )
        self._resume = False
        self._cancel: CancelRequest | None = None
        self._inbox_periods: list[EngagementCloseInput] = []
        self._inbox_payments: list[PaymentNotice] = []
        self._feedback_due = False
        self._pending_marks: list[MarkBilled] = []
        self._finance: FinanceConfig | None = None
        self._sa_buffer: list[Any] = []
        self._memo_buffer: dict[str, Any] = {}
        self._memo_key: str | None = None
        self._view_published: bytes | None = None
        self._outbox_failures: list[OutboxFailure] = []
        self._inbox_overdue: list[OverdueNotice] = []
        self._doing: str | None = None

    # ---- the happy path -------------------------------------------------------------
    @workflow.run
    async def run(self, data: EngagementInput) -> EngagementView:
        await self._lifecycle(data)
        self._publish()
        return readable(self._s)

    async def _lifecycle(self, data: EngagementInput) -> EngagementView:
        if data.carried is None:
            self._s.view.stage_since = workflow.now()
            if workflow.info().typed_search_attributes.get(sa.OPPORTUNITY_ID) is None:
                # Started by neither door (a person in the Web UI, a script): findable all the same.
                self._search(
                    sa.OPPORTUNITY_ID.value_set(data.opportunity_id), sa.STAGE.value_set(Stage.VALIDATING.value)
                )
            self._note(f"engagement started for opportunity {data.opportunity_id}")
            engagement = await self._booked_deal()
            if engagement is None:
                return self._s.view
            if not await self._provisioned(engagement):
                return self._s.view
            self._to(Stage.IN_DELIVERY, "project and contract are set up; delivery can start")
        else:
            self._note("continued as new with the engagement's books carried over")
            self._describe_for_batches()
        if self._s.view.stage == Stage.IN_DELIVERY:
            await self._deliver()
        if self._s.view.stage == Stage.CLOSING:
            await self._close_out()
        return self._s.view

    async def _booked_deal(self) -> Engagement | None:
        """Validate (waiting for CRM fixes), then get a person's approval where needed."""
        while True:
            engagement = await self._validated_deal()
            if engagement is None:
                return None
            if await self._approved(engagement):
                return engagement
            if self._s.view.stage == Stage.CANCELLED:
                return None  # cancelled while it waited for the approval
            if not await self._needs_attention("the deal was rejected; fix its terms in the CRM and revalidate"):
                return None
            self._to(Stage.VALIDATING, "revalidating after the rejection")

    # ---- messages ---------------------------------------------------------------------
    @workflow.query(name=messages.VIEW)
    def view(self) -> EngagementView:
        return readable(self._s)

    @workflow.signal(name=messages.REVALIDATE)
    def revalidate(self) -> None:
        """The CRM was fixed (or the outside trouble is over): try the waiting step again.
        For systems that can only signal; people resume through the `resume` update."""
        self._resume_on_signal("revalidate")
        self._publish_memo()

    @workflow.signal(name=messages.RETRY)
    def retry(self) -> None:
        self._resume_on_signal("retry")
        self._publish_memo()

    def _resume_on_signal(self, name: str) -> None:
        """A signal cannot be refused: one that finds nothing waiting is noted, never kept for later."""
        try:
            self._validate_resume(ResumeRequest())
        except ApplicationError as refused:
            self._note(f"{name} signal ignored: {refused.message}")
            return
        self._resume = True

    @workflow.update(name=messages.RESUME)
    def resume(self, request: ResumeRequest) -> str:
        """Retry (or revalidate) the step waiting for a fix; the validator refuses when none waits,
        so a caller learns it at once instead of the request being dropped."""
        self._resume = True
        note = f"{request.via} requested by {request.by or 'unknown'}"
        self._note(note)
        self._publish_memo()
        return note

    @resume.validator
    def _validate_resume(self, request: ResumeRequest) -> None:
        waiting = self._s.view.waiting_for
        if waiting is None or waiting.kind is not WaitKind.FIX:
            what = f", waiting for {waiting.what}" if waiting is not None else ""
            raise conflict("stage", f"the engagement is {self._s.view.stage}{what}: it waits for no fix to retry")
        if self._resume:  # until the retried step has run, a second retry would be lost in it
            raise conflict("stage", "a retry is already under way: wait for its outcome")

    @workflow.signal(name=messages.CANCEL)
    def cancel(self, request: CancelRequest) -> None:
        self._cancel = request
        self._publish_memo()

    @workflow.update(name=messages.DECIDE)
    def decide(self, decision: DecisionInput) -> Approval:
        """A person's decision on a pending approval: recorded with who, when and why."""
        decided_approval = self._apply_decision(decision)
        self._publish_memo()
        return decided_approval

    def _apply_decision(self, decision: DecisionInput) -> Approval:
        approval = self._approval(decision.approval_id)
        assert approval is not None  # the validator refused anything else
        updated = decided(approval, decision.approve, decision.by, workflow.now(), decision.comment)
        approvals = [updated if a.approval_id == updated.approval_id else a for a in self._s.view.approvals]
        if not decision.approve:
            approvals = withdrawn_with(updated, approvals, workflow.now())
        self._s.view.approvals = approvals
        self._refresh_pending()
        waiting = self._s.view.waiting_for
        if waiting is not None and waiting.kind is WaitKind.APPROVAL:
            self._wait_for_approvals()  # the ones still pending (none: the waiting step moves on)
        verb = "approved" if decision.approve else "rejected"
        self._note(f"{updated.subject} {verb} by {decision.by}" + (f": {decision.comment}" if decision.comment else ""))
        return updated

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        check_decision(self._approval(decision.approval_id), decision.by, set(decision.roles), self._s.view.approvals)

    @workflow.signal(name=messages.DECISION)
    def decision_signal(self, decision: DecisionInput) -> None:
        """The same decision for systems that can only signal; an invalid one is noted, not applied."""
        try:
            self._validate_decision(decision)
        except ValueError as refused:
            self._note(f"decision on {decision.approval_id} by {decision.by} ignored: {refused}")
        else:
            self._apply_decision(decision)
        self._publish_memo()

    @workflow.update(name=messages.CLOSE_PERIOD)
    async def close_period(self, request: EngagementCloseInput) -> PeriodResult:
        """Billing and revenue run for one period; returns what was billed and recognized.
        Re-running a closed period returns the same result and posts nothing twice."""
        done = self._s.period_results.get(request.period)
        if done is not None:
            return self._with_outbox(done, request) if request.outbox else done
        self._inbox_periods.append(request)
        await workflow.wait_condition(
            lambda: request.period in self._s.period_results or self._s.view.stage != Stage.IN_DELIVERY
        )
        result = self._s.period_results.get(request.period)
        self._publish_memo()
        if result is None:
            raise workflow_failure(f"period {request.period} was not closed: {self._s.view.failure}")
        return self._with_outbox(result, request) if request.outbox else result

    @close_period.validator
    def _validate_close(self, request: EngagementCloseInput) -> None:
        try:
            period_end(request.period)
        except ValueError as error:
            raise invalid_request("period", f"{request.period} is not a month: {error}") from error
        if self._s.view.stage != Stage.IN_DELIVERY and request.period not in self._s.period_results:
            raise conflict("stage", f"the engagement is {self._s.view.stage}, not in delivery")

    @workflow.update(name=messages.REQUEST_AMENDMENT)
    def request_amendment(self, request: AmendmentInput) -> ChangeRecord:
        record = self._register_amendment(request)
        self._publish_memo()
        return record

    @request_amendment.validator
    def _validate_amendment(self, request: AmendmentInput) -> None:
        self._check_amendment(request)

    @workflow.update(name=messages.REQUEST_CREDIT_MEMO)
    def request_credit_memo(self, request: CreditMemoInput) -> ChangeRecord:
        record = self._register_credit_memo(request)
        self._publish_memo()
        return record

    @request_credit_memo.validator
    def _validate_credit_memo(self, request: CreditMemoInput) -> None:
        self._check_credit_memo(request)

    @workflow.signal(name=messages.PAYMENT_RECEIVED)
    def payment_received(self, notice: PaymentNotice) -> None:
        self._inbox_payments.append(notice)
        self._publish_memo()

    @workflow.signal(name=messages.MILESTONE_COMPLETED)
    def milestone_completed(self, notice: MilestoneNotice) -> None:
        # Milestones are billed from the PSA's record at the next period close; the
        # notice only makes the engagement's timeline tell the story as it happens.
        self._note(f"milestone {notice.milestone_id} completed on {notice.completed_on}")
        self._publish_memo()

    @workflow.signal(name=messages.INVOICES_OVERDUE)
    def invoices_overdue(self, notice: OverdueNotice) -> None:
        self._inbox_overdue.append(notice)
        self._publish_memo()

    @workflow.signal(name=messages.OUTBOX_FAILED)
    def outbox_failed(self, failure: OutboxFailure) -> None:
        """The month-end batch could not write this engagement's documents or feedback:
        the engagement writes them itself (idempotently), or waits for a person."""
        self._outbox_failures.append(failure)
        self._publish_memo()

    @workflow.signal(name=messages.DELIVERY_COMPLETE)
    def delivery_complete(self) -> None:
        self._s.view.delivery_complete = True
        self._note("delivery reported complete: the next period close recognizes the remainder")
        self._publish_memo()

    # ---- validation and approval ---------------------------------------------------------
    async def _validated_deal(self) -> Engagement | None:
        while True:
            self._set_details("Reading the opportunity from the CRM and checking it")
            snapshot: OpportunitySnapshot = await workflow.execute_activity(
                "crm.read_opportunity",
                ReadOpportunityInput(opportunity_id=self._input.opportunity_id),
                result_type=OpportunitySnapshot,
                task_queue=self._input.queues.crm,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=VENDOR_RETRY,
                summary=f"Read opportunity {self._input.opportunity_id} with account and lines",
            )
            rules: DealRules = await workflow.execute_local_activity(
                "config.deal_rules",
                DealRulesInput(opportunity_id=self._input.opportunity_id),
                result_type=DealRules,
                **LOCAL_CONFIG,
            )
            result = validate_deal(snapshot, rules)
            self._s.view.name = snapshot.name
            if isinstance(result, Engagement):
                self._s.view.errors = []
                self._adopt(result)
                await self._incident_passed()
                return result
            self._s.view.errors = result
            fields = ", ".join(sorted({e.field for e in result}))
            if not await self._needs_attention(f"the deal is invalid ({fields}); fix it in the CRM"):
                return None
            self._to(Stage.VALIDATING, "revalidating after a fix in the CRM")

    async def _approved(self, engagement: Engagement) -> bool:
        finance = await self._finance_config(engagement.legal_entity)
        reasons = deal_approval_reasons(engagement, finance.approvals)
        if not reasons:
            return True
        self._to(Stage.AWAITING_APPROVAL, "needs approval: " + "; ".join(reasons))
        approval = self._open_approval(
            deal_approval_id(engagement.opportunity_id, len(self._s.view.approvals)),
            f"deal {engagement.opportunity_id}",
            finance.approvals.deal_approver_roles,
        )
        self._wait_for_approvals()
        while True:
            await self._wait_or_remind(
                lambda: self._decided(approval.approval_id) or self._cancel is not None, finance.approvals
            )
            if self._cancel is not None:
                self._to(Stage.CANCELLED, f"cancelled by {self._cancel.by or 'unknown'}: {self._cancel.reason}")
                return False
            current = self._approval(approval.approval_id)
            if current is not None and current.decision is not ApprovalDecision.PENDING:
                return current.decision is ApprovalDecision.APPROVED

    def _open_approval(self, approval_id: str, subject: str, roles: list[str]) -> Approval:
        approval = Approval(
            approval_id=approval_id,
            subject=subject,
            requested_by=self._input.requested_by or "system:crm",
            requested_at=workflow.now(),
            approver_roles=roles,
        )
        self._s.view.approvals.append(approval)
        self._refresh_pending()
        return approval

    async def _wait_or_remind(self, done: object, policy: ApprovalPolicy) -> None:
        """Wait for `done`, sending due reminders and escalations for pending approvals."""
        assert callable(done)
        while not done():
            self._publish()
            timeout = self._next_reminder(policy)
            try:
                await workflow.wait_condition(done, timeout=timeout)
            except TimeoutError:
                await self._send_due_reminders(policy)

    # ---- delivery ---------------------------------------------------------------------------
    async def _deliver(self) -> None:
        """React to period closes, approved changes, payments and due dates until the
        engagement is delivered, billed, recognized and collected."""
        assert self._s.engagement is not None
        finance = await self._finance_config(self._s.engagement.legal_entity)
        while True:
            await self._wait_for_work(finance.approvals)
            if self._cancel is not None:
                self._cancel_in_delivery(self._cancel)
                return
            try:
                await self._process_inbox(finance)
            except STEP_FAILURES as error:
                self._s.view.failure = failure_reason(error)
                if not await self._needs_attention(f"a delivery step failed: {self._s.view.failure}"):
                    return
                self._to(Stage.IN_DELIVERY, "resuming delivery after a fix")
                continue
            await self._incident_passed()
            if self._ready_to_close():
                self._to(Stage.CLOSING, "delivered, fully billed, recognized and collected")
                return
            info = workflow.info()
            # A new current worker version is also a reason: the next run starts on it, so
            # the old build drains within one month-end instead of living as long as the deal.
            moving = info.is_target_worker_deployment_version_changed()
            if (info.is_continue_as_new_suggested() or moving) and not self._busy():
                self._publish()
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._publish()
                workflow.continue_as_new(
                    EngagementInput(
                        opportunity_id=self._input.opportunity_id,
                        requested_by=self._input.requested_by,
                        queues=self._input.queues,
                        carried=self._s,
                    ),
                    initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
                )

    async def _wait_for_work(self, policy: ApprovalPolicy) -> None:
        def work() -> bool:
            return self._busy() or self._cancel is not None or self._overdue_due() or self._ready_to_close()

        self._say_what_delivery_waits_for()
        timeout = self._next_reminder(policy)
        self._publish()
        try:
            await workflow.wait_condition(work, timeout=timeout)
        except TimeoutError:
            await self._send_due_reminders(policy)

    def _cancel_in_delivery(self, request: CancelRequest) -> None:
        """A person ends the engagement mid-delivery: d2r stops billing and recognizing it.
        What was issued stays issued (invoices, revenue); the project and the sales order
        stay open in the PSA and the ERP for finance to close there."""
        amounts = self._s.view.amounts
        left = (
            f"; left as issued: billed {amounts.billed}, outstanding {amounts.outstanding}, deferred {amounts.deferred}"
            if amounts is not None
            else ""
        )
        self._to(Stage.CANCELLED, f"cancelled in delivery by {request.by or 'unknown'}: {request.reason}{left}")

    async def _process_inbox(self, finance: FinanceConfig) -> None:
        while self._inbox_periods:
            request = self._inbox_periods[0]
            try:
                await self._run_period_close(request, finance)
            except BUSINESS_FAILURES:
                # The request itself is bad: drop it, so a retry resumes delivery instead of
                # failing on it again (its caller gets the reason; a corrected one may follow).
                self._inbox_periods.pop(0)
                raise
            self._inbox_periods.pop(0)
        while self._inbox_payments:
            self._record_payment(self._inbox_payments.pop(0))
        while self._outbox_failures:
            await self._write_outbox(self._outbox_failures[0])
            self._outbox_failures.pop(0)
        await self._apply_decided_changes(finance)
        self._flag_overdue()
        if self._feedback_due:
            await self._send_feedback()

    def _busy(self) -> bool:
        return bool(
            self._inbox_periods
            or self._inbox_payments
            or self._outbox_failures
            or self._feedback_due
            or self._changes_ready()
        )

    def _say_what_delivery_waits_for(self) -> None:
        """In delivery: the pending approvals, else the customer's payment once all is billed
        and recognized, else the next month-end close."""
        if self._wait_for_approvals():
            return
        view = self._s.view
        if self._s.final_run_done and view.amounts is not None and view.amounts.outstanding.is_positive():
            self._wait_for(WaitKind.PAYMENT, f"the customer to pay {view.amounts.outstanding} outstanding")
            return
        closed = sorted(view.periods_closed)
        period = next_period(closed[-1]) if closed else period_of(workflow.now().date())
        final = " (the final one: delivery is complete)" if view.delivery_complete else ""
        self._wait_for(WaitKind.PERIOD_CLOSE, f"the {period} month-end close (billing and revenue){final}", period)

    def _ready_to_close(self) -> bool:
        view = self._s.view
        amounts = view.amounts
        if (
            not view.delivery_complete
            or not self._s.final_run_done
            or amounts is None
            or self._s.contract is None
            or self._inbox_periods
        ):
            return False
        fully_recognized = all(p.recognized == p.transaction_price for p in view.lines)
        return (
            fully_recognized
            and amounts.outstanding.is_zero()
            and amounts.unbilled.is_zero()
            and amounts.deferred.is_zero()
            and not view.pending_approvals
        )

    # ---- small helpers ------------------------------------------------------------------------
    def _approval(self, approval_id: str) -> Approval | None:
        return next((a for a in self._s.view.approvals if a.approval_id == approval_id), None)

    def _decided(self, approval_id: str) -> bool:
        approval = self._approval(approval_id)
        return approval is not None and approval.decision is not ApprovalDecision.PENDING

    def _refresh_pending(self) -> None:
        pending = [a.approval_id for a in self._s.view.approvals if a.decision is ApprovalDecision.PENDING]
        if bool(pending) != bool(self._s.view.pending_approvals):
            self._search(sa.PENDING_APPROVAL.value_set(bool(pending)))
        self._s.view.pending_approvals = pending

    async def _finance_config(self, legal_entity: str) -> FinanceConfig:
        if self._finance is None:
            config = await workflow.execute_local_activity(
                "config.finance",
                FinanceConfigInput(legal_entity=legal_entity),
                result_type=FinanceConfig,
                **LOCAL_CONFIG,
            )
            self._finance = shared_finance(config)
        return self._finance

    async def _needs_attention(self, reason: str) -> bool:
        """Wait for a person: True to resume, False if the engagement was cancelled.

        With a reporting hub, the wait is an exception people can find, retry or resolve
        (`/v1/exceptions`), linked to this workflow. A resume marks it `retrying`; it is resolved
        when the retried step passes (or the engagement is cancelled), and a step that fails
        again reopens the same exception instead of opening another."""
        self._to(Stage.NEEDS_ATTENTION, reason)
        self._wait_for(
            WaitKind.FIX,
            f"a person to fix it ({reason}), then revalidate (sales_ops) or retry (delivery_ops), or cancel",
        )
        self._resume = False
        if not self._s.incident_retrying:  # a retried step that fails again is the same incident
            self._s.incidents += 1
        self._s.incident_retrying = False
        await self._report_incident(reason)
        self._publish()
        await workflow.wait_condition(lambda: self._resume or self._cancel is not None)
        if self._cancel is not None:
            self._to(Stage.CANCELLED, f"cancelled by {self._cancel.by or 'unknown'}: {self._cancel.reason}")
            await self._close_incident(f"cancelled by {self._cancel.by or 'unknown'}")
            return False
        await self._retrying_incident()
        return True

    async def _incident_passed(self) -> None:
        """The step a person retried has passed: only now is its exception resolved."""
        if self._s.incident_retrying:
            self._s.incident_retrying = False
            await self._close_incident("the retried step passed")

    async def _retrying_incident(self) -> None:
        self._s.incident_retrying = True
        queue = self._input.queues.reporting
        if queue is None:
            return
        await self._call(
            "reporting.exception_retrying",
            RetryingExceptionInput(
                workflow_id=self._s.view.workflow_id, incident=self._s.incidents, kind="engagement.needs_attention"
            ),
            ExceptionRef,
            queue,
            "Hub: the exception is being retried",
        )

    async def _report_incident(self, reason: str) -> None:
        queue = self._input.queues.reporting
        if queue is None:
            return
        view = self._s.view
        error_type = view.failure.split(":", 1)[0] if view.failure else ("InvalidDeal" if view.errors else None)
        await self._call(
            "reporting.raise_exception",
            RaiseExceptionInput(
                workflow_id=view.workflow_id,
                incident=self._s.incidents,
                kind="engagement.needs_attention",
                message=reason,
                error_type=error_type,
                stage=view.stage.value,
                opportunity_id=view.opportunity_id,
                customer_id=view.customer_id,
                project_id=view.project_id,
                contract_id=view.contract_id,
                legal_entity=view.legal_entity,
                detail={e.field: e.message for e in view.errors},
            ),
            ExceptionRef,
            queue,
            "Hub: open an exception for a person",
        )

    async def _close_incident(self, note: str) -> None:
        queue = self._input.queues.reporting
        if queue is None:
            return
        await self._call(
            "reporting.resolve_exception",
            ResolveExceptionInput(
                workflow_id=self._s.view.workflow_id,
                incident=self._s.incidents,
                kind="engagement.needs_attention",
                resolved_by="d2r",
                note=note,
            ),
            ExceptionRef,
            queue,
            "Hub: resolve the exception",
        )

    def _to(self, stage: Stage, note: str) -> None:
        if stage != self._s.view.stage:
            self._s.view.stage = transition(self._s.view.stage, stage)
            self._s.view.stage_since = workflow.now()
            self._s.view.waiting_for = None  # each stage says what it waits for
            self._search(sa.STAGE.value_set(stage.value))
        self._note(note)


def workflow_failure(message: str) -> ApplicationError:
    return ApplicationError(message, type="PeriodNotClosed", non_retryable=True)
