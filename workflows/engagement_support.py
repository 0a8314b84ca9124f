"""What every part of EngagementWorkflow shares: state, timeline, reminders, retry policy."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.config import FinanceConfig
    from contracts.crm import Ack, NotifyInput
    from contracts.engagement import (
        CancelRequest,
        EngagementCloseInput,
        EngagementInput,
        EngagementState,
        OverdueNotice,
        PaymentNotice,
        TimelineEntry,
        WaitingFor,
        WaitKind,
    )
    from contracts.memo import BATCH_MEMO, VIEW_MEMO
    from contracts.retry import VENDOR_ATTEMPTS, retry_policy
    from contracts.story import approval_wait, current_details
    from domain.approvals import ApprovalPolicy
    from domain.deal import Engagement
    from domain.ids import external_id
    from domain.model import ApprovalDecision
    from domain.stages import Stage
    from domain.system_records import Notification
    from workflows.engagement_view import readable

ACTIVITY_TIMEOUT = timedelta(seconds=60)
# Transient vendor trouble retries with backoff for a while; typed business errors
# (non_retryable ApplicationErrors from the activities) stop at once.
VENDOR_RETRY = retry_policy(VENDOR_ATTEMPTS)
LOCAL_CONFIG: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=10)}

# Every engagement of a legal entity reads the same finance configuration (tax rules, FX
# table, chart of accounts): ~17 KiB of objects each, the largest part of an open
# engagement's own memory. One object per distinct configuration serves them all (this
# module is imported passed through, so once per process); it is read-only to workflow
# code, and equal content behaves the same, so replay is unaffected.
_SHARED_FINANCE: list[FinanceConfig] = []
_SHARED_FINANCE_MAX = 64  # distinct configurations kept (entities x config changes)


def shared_finance(config: FinanceConfig) -> FinanceConfig:
    # by equality, not by JSON: a frozenset (the EU members) serializes in any order
    for shared in _SHARED_FINANCE:
        if shared == config:
            return shared
    if len(_SHARED_FINANCE) >= _SHARED_FINANCE_MAX:
        _SHARED_FINANCE.clear()  # runs that hold the old objects keep them
    _SHARED_FINANCE.append(config)
    return config


class EngagementBase:
    """Attributes the mixins rely on, and the bookkeeping they share."""

    _input: EngagementInput
    _s: EngagementState
    _resume: bool
    _cancel: CancelRequest | None
    _inbox_periods: list[EngagementCloseInput]
    _inbox_payments: list[PaymentNotice]
    _inbox_overdue: list[OverdueNotice]
    _feedback_due: bool
    _finance: FinanceConfig | None
    # Search attributes and the memo are buffered and written once where the workflow
    # settles, not at every step (each upsert is a billed Action).
    _sa_buffer: list[Any]
    _memo_buffer: dict[str, Any]
    _memo_key: str | None
    _view_published: bytes | None  # the digest of the view last put in the memo (this run)
    _doing: str | None  # the step under way, for the Web UI's current details

    async def _needs_attention(self, reason: str) -> bool:
        raise NotImplementedError  # the workflow class implements it

    async def _incident_passed(self) -> None:
        raise NotImplementedError  # the workflow class implements it

    def _to(self, stage: Stage, note: str) -> None:
        raise NotImplementedError  # the workflow class implements it

    def _call(self, activity: str, arg: Any, result_type: type, queue: str, summary: str) -> Any:
        """One vendor call with d2r's standard timeout and retry policy."""
        return workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            task_queue=queue,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=VENDOR_RETRY,
            summary=summary,
        )

    def _search(self, *updates: Any) -> None:
        """Search-attribute changes: each upsert is a billed Temporal Action, so they are
        buffered and written together when the workflow next waits (`_publish`)."""
        self._sa_buffer.extend(updates)

    def _publish(self) -> None:
        """Write the buffered search attributes and memo: called before every wait for a
        message, a person or a timer, before continue-as-new and at the end."""
        if self._sa_buffer:
            merged = {u.key.name: u for u in self._sa_buffer}  # the latest value per key
            self._sa_buffer = []
            workflow.upsert_search_attributes(list(merged.values()))
        self._publish_memo()

    def _publish_memo(self) -> None:
        """The view and the buffered memo. Every message handler ends here too: a handler
        that changes the view without waking the main loop must not leave the memo behind it.
        A memo upsert is no billed Action (a search-attribute upsert and a query are)."""
        self._buffer_view()
        if self._memo_buffer:
            memo, self._memo_buffer = self._memo_buffer, {}
            workflow.upsert_memo(memo)

    def _buffer_view(self) -> None:
        """The view the `view` query returns, into the memo when it changed. Published where
        the run settles, it is what a query would answer whenever no workflow task, activity
        or child is under way: the API reads it then (one DescribeWorkflowExecution) instead
        of asking a worker, which would replay the run if it is out of the worker's cache."""
        view = readable(self._s)
        # a digest, not the view: a cached run keeps 16 bytes, not a second copy of its view
        digest = hashlib.blake2b(view.model_dump_json().encode(), digest_size=16).digest()
        if digest != self._view_published:
            self._view_published = digest
            self._memo_buffer[VIEW_MEMO] = view

    def _describe_for_batches(self) -> None:
        """Put in the memo what an entity-wide period close needs to read this engagement's
        delivery from the PSA in bulk (visibility lists return the memo): written once, and
        again only when an amendment changes which lines there are or how they bill."""
        contract, view = self._s.contract, self._s.view
        if contract is None:
            return
        lines = [t.line for t in contract.terms.values()]
        key = "|".join(f"{ln.line_id}:{ln.billing_model.value}:{ln.role}" for ln in lines)
        if key == self._memo_key:
            return
        self._memo_key = key
        self._memo_buffer[BATCH_MEMO] = {
            "project_id": view.project_id,
            "contract_id": view.contract_id,
            "erp_customer_id": view.erp_customer_id,
            "lines": [ln.model_dump(mode="json") for ln in lines],
        }

    def _adopt(self, engagement: Engagement) -> None:
        self._s.engagement = engagement
        view = self._s.view
        view.customer_id = engagement.customer.customer_id
        view.customer_name = engagement.customer.name
        view.legal_entity = engagement.legal_entity
        view.currency = engagement.currency
        view.contract_value = engagement.contract_value
        view.billing_models = [m.value for m in engagement.billing_models]
        self._search(
            sa.CUSTOMER_ID.value_set(engagement.customer.customer_id),
            sa.LEGAL_ENTITY.value_set(engagement.legal_entity),
            sa.BILLING_MODELS.value_set(view.billing_models),
        )

    def _note(self, note: str) -> None:
        view = self._s.view
        view.timeline.append(TimelineEntry(at=workflow.now(), stage=view.stage, note=note))
        self._show()

    def _set_details(self, doing: str | None) -> None:
        """Say in the Web UI what the engagement is doing now (None: nothing, it waits)."""
        self._doing = doing
        self._show()

    def _show(self) -> None:
        workflow.set_current_details(current_details(self._s.view, self._doing))

    def _wait_for(self, kind: WaitKind, what: str, period: str | None = None, approval_ids: Any = ()) -> None:
        """Record what the engagement now waits for (the view and the Web UI say it); the same
        wait again keeps the time it began."""
        view = self._s.view
        previous = view.waiting_for
        same = previous is not None and (previous.kind, previous.what) == (kind, what)
        view.waiting_for = WaitingFor(
            kind=kind,
            what=what,
            since=previous.since if same and previous is not None else workflow.now(),
            period=period,
            approval_ids=list(approval_ids),
        )
        self._set_details(None)

    def _wait_for_approvals(self) -> bool:
        """Waiting for the pending approvals, if there are any (whose decision, who may not)."""
        approvals = self._s.view.approvals
        pending = [a for a in approvals if a.decision is ApprovalDecision.PENDING]
        if pending:
            self._wait_for(WaitKind.APPROVAL, approval_wait(pending, approvals), None, [a.approval_id for a in pending])
        return bool(pending)

    # ---- reminders and escalations for pending approvals ---------------------------------
    def _next_reminder(self, policy: ApprovalPolicy) -> timedelta | None:
        now = workflow.now()
        deadlines = []
        for approval in self._s.view.approvals:
            if approval.decision is not ApprovalDecision.PENDING:
                continue
            if approval.approval_id not in self._s.reminded:
                deadlines.append(approval.requested_at + timedelta(hours=policy.remind_after_hours))
            elif approval.approval_id not in self._s.escalated:
                deadlines.append(approval.requested_at + timedelta(hours=policy.escalate_after_hours))
        if not deadlines:
            return None
        return max(min(deadlines) - now, timedelta(seconds=1))

    async def _send_due_reminders(self, policy: ApprovalPolicy) -> None:
        now = workflow.now()
        wid = workflow.info().workflow_id
        for approval in list(self._s.view.approvals):
            if approval.decision is not ApprovalDecision.PENDING:
                continue
            age = now - approval.requested_at
            if approval.approval_id not in self._s.reminded and age >= timedelta(hours=policy.remind_after_hours):
                await self._call(
                    "crm.notify",
                    NotifyInput(
                        external_id=external_id(wid, f"remind:{approval.approval_id}"),
                        notification=Notification(
                            subject=f"Reminder: {approval.subject} awaits your decision",
                            body=f"Requested by {approval.requested_by} on {approval.requested_at:%Y-%m-%d}.",
                            audience=approval.approver_roles,
                            related_id=self._input.opportunity_id,
                        ),
                    ),
                    Ack,
                    self._input.queues.crm,
                    f"Remind {'/'.join(approval.approver_roles)}: {approval.subject}",
                )
                self._s.reminded.append(approval.approval_id)
                self._note(f"reminder sent for {approval.subject}")
            if approval.approval_id not in self._s.escalated and age >= timedelta(hours=policy.escalate_after_hours):
                await self._call(
                    "crm.notify",
                    NotifyInput(
                        external_id=external_id(wid, f"escalate:{approval.approval_id}"),
                        notification=Notification(
                            subject=f"Escalation: {approval.subject} undecided for {age.days} days",
                            body=f"Requested by {approval.requested_by}; approvers: {approval.approver_roles}.",
                            audience=[*approval.approver_roles, "integration_admin"],
                            priority="High",
                            related_id=self._input.opportunity_id,
                        ),
                    ),
                    Ack,
                    self._input.queues.crm,
                    f"Escalate {approval.subject}",
                )
                self._s.escalated.append(approval.approval_id)
                self._note(f"{approval.subject} escalated after {age.days} days")
