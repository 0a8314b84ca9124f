"""PeriodCloseWindowWorkflow — id `close-<legal entity>-<period>-w<n>`: one window of a month-end.

A child of PeriodCloseWorkflow per window, so the close's own history holds one child per
window and each window's history is bounded by the window, however many engagements the
entity has. A window: one page of engagements (visibility) -> their delivery from the PSA
(paged inside one activity) and their receivables from the ERP (receipts and invoices open
past due, one activity) -> each engagement's `close_period` update with those facts (its
line goes to the hub's close report) -> what the updates hand back written to the ERP, the
CRM, the PSA and the hub, each on its own system's queue; an engagement whose write was
refused for good writes its own. It returns a bounded summary (counts, totals, a sample
of exceptions) and the next page's token.

With the hub (`data.stage`), the delivery and the outboxes wait there
(contracts/window_stage.py) and this history carries their ids: the same activities, the
same order, payloads that do not grow with what an engagement weighs.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts.crm import BillingStatusWindowInput
    from contracts.engagement import CloseOutbox, EngagementCloseInput, OutboxFailure, OverdueInvoice, PaymentNotice
    from contracts.erp import (
        PostDocumentsWindowInput,
        ReceivablesWindowInput,
        ReceivablesWindowResult,
        WindowWriteResult,
    )
    from contracts.ids import opportunity_of
    from contracts.period_close import (
        RECEIPTS_LOOKBACK_DAYS,
        CloseWindowInput,
        CloseWindowRequest,
        CloseWindowResult,
        CloseWindowSummary,
        EngagementList,
        EngagementTarget,
        FindEngagementsInput,
        HandBackInput,
        HandBackResult,
    )
    from contracts.psa import DeliveriesResult, FeedbackWindowInput, ReadDeliveriesInput
    from contracts.reporting import RecordEngagementsInput
    from contracts.retry import VENDOR_ATTEMPTS, retry_policy
    from contracts.window_stage import StagedWindow
    from domain.billing import Delivery
    from domain.periods import period_end

RETRY = retry_policy(VENDOR_ATTEMPTS)
OVERDUE_LOOKBACK_DAYS = 730  # invoices due this long before a cut-off and still open are overdue


def close_activity(
    activity: str,
    arg: object,
    result_type: type,
    queue: str,
    summary: str,
    timeout: timedelta = timedelta(minutes=10),
    heartbeat: bool = False,
) -> Any:
    """One activity with the close's retry policy; long, paged ones heartbeat (a lost worker
    is noticed in minutes; each heartbeat that reaches the server is an Action, and the SDK
    sends at most one a minute at this timeout)."""
    return workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        task_queue=queue,
        start_to_close_timeout=timeout,
        heartbeat_timeout=timedelta(minutes=5) if heartbeat else None,
        retry_policy=RETRY,
        summary=summary,
    )


# Pinned like its close: a window runs on its close's build (its activities' payloads with it).
@workflow.defn(name="PeriodCloseWindowWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class PeriodCloseWindowWorkflow:
    @workflow.run
    async def run(self, data: CloseWindowRequest) -> CloseWindowSummary:
        page = await self._find(data)
        summary = CloseWindowSummary(number=data.number, next_page_token=page.next_page_token)
        if not page.targets:
            return summary
        workflow.set_current_details(f"**BILLING** — window {data.number}: {len(page.targets)} engagements")
        requests, not_closed, staged = await self._requests(data, page.targets)
        closed: CloseWindowResult = await close_activity(
            "close.close_engagements",
            CloseWindowInput(
                report_id=data.report_id,
                legal_entity=data.legal_entity,
                period=data.period,
                window=data.number,
                requests=requests,
                not_closed=not_closed,
                stage=data.stage,
                staged_projects=staged,
            ),
            CloseWindowResult,
            workflow.info().task_queue,
            f"Close {data.period} for {len(requests)} engagements",
            timeout=timedelta(hours=2),
            heartbeat=True,
        )
        summary.tally = closed.tally
        refused = await self._write_outboxes(data, closed)
        if refused:
            summary.handed_back = len(refused)
            in_stage = {w for ids in closed.staged.values() for w in ids}
            handed: HandBackResult = await close_activity(
                "close.hand_back",
                HandBackInput(
                    report_id=data.report_id,
                    failures=[
                        OutboxFailure(period=data.period, outbox=o, error=refused[o.workflow_id])
                        for o in closed.outboxes
                        if o.workflow_id in refused
                    ],
                    stage=data.stage if in_stage else None,
                    period=data.period,
                    refused={w: e for w, e in refused.items() if w in in_stage},
                ),
                HandBackResult,
                workflow.info().task_queue,
                f"{len(refused)} engagements write their own {data.period} documents",
            )
            summary.signals_sent = len(refused)  # each sent is an Action, found or not
            workflow.set_current_details(
                f"**BILLING** — window {data.number}: {handed.signalled} engagements write their own documents"
            )
        return summary

    async def _find(self, data: CloseWindowRequest) -> EngagementList:
        page: EngagementList = await close_activity(
            "close.find_engagements",
            FindEngagementsInput(legal_entity=data.legal_entity, page_size=data.size, page_token=data.page_token),
            EngagementList,
            workflow.info().task_queue,
            f"Engagements of {data.legal_entity} in delivery (window {data.number})",
        )
        return page

    async def _requests(
        self, data: CloseWindowRequest, targets: list[EngagementTarget]
    ) -> tuple[dict[str, EngagementCloseInput], dict[str, str], dict[str, str]]:
        """Each engagement's update: batched ones carry the facts read here (with a stage,
        their delivery is added from it: workflow id -> project id) and hand back an
        outbox; the others read their own."""
        cutoff = period_end(data.period)
        batched = [t for t in targets if t.batched]
        deliveries, in_stage, receipts, overdue = await self._window_facts(data, cutoff, batched)
        requests: dict[str, EngagementCloseInput] = {}
        not_closed: dict[str, str] = {}
        staged: dict[str, str] = {}
        for t in targets:
            request = EngagementCloseInput(period=data.period, requested_by=data.requested_by)
            project = t.project_id or ""
            if t.batched and (project in deliveries or project in in_stage):
                opportunity = opportunity_of(t.workflow_id)
                request = request.model_copy(
                    update={
                        "delivery": deliveries.get(project),
                        "payments": receipts.get(opportunity, []),
                        "overdue": overdue.get(opportunity, []),
                        "outbox": True,
                    }
                )
                if project in in_stage:
                    staged[t.workflow_id] = project
            elif t.batched:
                not_closed[t.workflow_id] = f"project {t.project_id} is not in the PSA"
                continue
            requests[t.workflow_id] = request
        return requests, not_closed, staged

    async def _window_facts(
        self, data: CloseWindowRequest, cutoff: date, batched: list[EngagementTarget]
    ) -> tuple[dict[str, Delivery], set[str], dict[str, list[PaymentNotice]], dict[str, list[OverdueInvoice]]]:
        """The window's delivery (PSA, paged in one activity; with a stage, the projects whose
        delivery it holds), receipts and invoices open past due (ERP, one activity)."""
        if not batched:
            return {}, set(), {}, {}
        entity, queues = data.legal_entity, data.queues
        read: DeliveriesResult = await close_activity(
            "psa.read_deliveries",
            ReadDeliveriesInput(
                legal_entity=entity,
                projects={t.project_id or "": t.lines for t in batched},
                cutoff=cutoff,
                stage=data.stage,
            ),
            DeliveriesResult,
            queues.psa,
            f"Delivery of {len(batched)} projects up to {cutoff}",
            timeout=timedelta(minutes=30),
            heartbeat=True,
        )
        customers = {opportunity_of(t.workflow_id): t.erp_customer_id for t in batched if t.erp_customer_id}
        found: ReceivablesWindowResult = await close_activity(
            "erp.receivables_window",
            ReceivablesWindowInput(
                legal_entity=entity,
                since=cutoff - timedelta(days=RECEIPTS_LOOKBACK_DAYS),
                through=cutoff,
                due_from=cutoff - timedelta(days=OVERDUE_LOOKBACK_DAYS),
                due_to=cutoff,
                customers=customers,
            ),
            ReceivablesWindowResult,
            queues.erp,
            f"Receipts and open invoices of {len(customers)} engagements up to {cutoff}",
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
        for item in found.overdue:
            overdue.setdefault(item.opportunity_id, []).append(
                OverdueInvoice(
                    invoice_id=item.invoice_id, due_date=item.due_date, amount_remaining=item.amount_remaining
                )
            )
        return read.deliveries, set(read.staged), receipts, overdue

    async def _write_outboxes(self, data: CloseWindowRequest, closed: CloseWindowResult) -> dict[str, str]:
        """ERP documents first, then CRM and PSA feedback and the hub's facts, each system on its
        queue; an engagement refused by one system is left out of the next and writes its own.
        Outboxes in the stage are passed by id: each writer reads its part there."""
        queues, period, outboxes = data.queues, data.period, closed.outboxes
        refused: dict[str, str] = {}

        async def write(activity: str, arg: object, queue: str | None, summary: str) -> None:
            if queue is None:
                return
            result: WindowWriteResult = await close_activity(activity, arg, WindowWriteResult, queue, summary)
            refused.update(result.refused)

        def pending() -> list[CloseOutbox]:
            return [o for o in outboxes if o.workflow_id not in refused]

        def staged(system: str) -> tuple[StagedWindow | None, list[str]]:
            ids = [w for w in closed.staged.get(system, []) if w not in refused]
            return (data.stage if ids else None), ids

        erp = {o.workflow_id: o.erp for o in pending() if o.erp is not None}
        stage, erp_ids = staged("erp")
        if erp or erp_ids:
            await write(
                "erp.post_documents_window",
                PostDocumentsWindowInput(documents=erp, stage=stage, staged=erp_ids),
                queues.erp,
                f"Post {period} documents of {len(erp) + len(erp_ids)} engagements",
            )
        crm = {o.workflow_id: o.crm for o in pending() if o.crm is not None}
        stage, crm_ids = staged("crm")
        if crm or crm_ids:
            await write(
                "crm.write_billing_status_window",
                BillingStatusWindowInput(statuses=crm, stage=stage, staged=crm_ids),
                queues.crm,
                f"CRM billing status of {len(crm) + len(crm_ids)} engagements",
            )
        psa = {o.workflow_id: o.psa for o in pending() if o.psa is not None}
        stage, psa_ids = staged("psa")
        if psa or psa_ids:
            await write(
                "psa.feedback_window",
                FeedbackWindowInput(feedback=psa, stage=stage, staged=psa_ids),
                queues.psa,
                f"PSA feedback of {len(psa) + len(psa_ids)} engagements",
            )
        hub = {o.workflow_id: o.hub for o in pending() if o.hub is not None}
        stage, hub_ids = staged("hub")
        if hub and queues.reporting is None:  # started without the hub's queue: they write their own
            refused.update({w: "the month-end has no reporting queue" for w in hub})
        elif hub or hub_ids:
            await write(
                "reporting.record_engagements",
                RecordEngagementsInput(records=hub, stage=stage, staged=hub_ids),
                queues.reporting,
                f"Hub facts of {len(hub) + len(hub_ids)} engagements",
            )
        return refused
