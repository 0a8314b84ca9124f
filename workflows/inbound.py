"""InboundEventWorkflow: one webhook event, routed durably to the engagement it concerns.

Its id is the event id, so a redelivered webhook finds the first run and does nothing
more; the lookups it needs (which engagement owns this invoice or project) are activities.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import ClassVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.engagement import MilestoneNotice, PaymentNotice
    from contracts.erp import PaymentLineageInput, PaymentLineageResult
    from contracts.ids import engagement_workflow_id
    from contracts.inbound import InboundEvent, InboundResult
    from contracts.psa import ProjectOpportunityInput, ProjectOpportunityResult
    from domain.money import Money
    from workflows.engagement_support import VENDOR_RETRY


@workflow.defn(name="InboundEventWorkflow")
class InboundEventWorkflow:
    HANDLED: ClassVar[frozenset[str]] = frozenset({"payment.received", "milestone.completed"})

    @workflow.run
    async def run(self, event: InboundEvent) -> InboundResult:
        if event.type == "payment.received":
            return await self._payment(event)
        if event.type == "milestone.completed":
            return await self._milestone(event)
        return InboundResult(routed_to=[], note=f"{event.type} needs no routing")

    async def _payment(self, event: InboundEvent) -> InboundResult:
        data = event.data
        if workflow.patched("receipts-with-the-close"):
            # Receipts reach engagements with their entity's month-end close (read from the
            # ERP in bulk), and overdue invoices with the daily sweep: a signal per payment
            # would cost every engagement an Action per invoice.
            return InboundResult(
                routed_to=[], note=f"payment {data.get('payment_id')} is read from the ERP by the next month-end close"
            )
        applied = data.get("applied") or []
        lineage: PaymentLineageResult = await workflow.execute_activity(
            "erp.invoice_lineage",
            PaymentLineageInput(
                erp_instance=event.erp_instance, erp_invoice_ids=[str(a["invoice_id"]) for a in applied]
            ),
            result_type=PaymentLineageResult,
            task_queue=event.queues.erp,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=VENDOR_RETRY,
            summary=f"Which engagements own the invoices paid by payment {data.get('payment_id')}",
        )
        by_erp_id = {i.erp_invoice_id: i for i in lineage.invoices}
        routed = []
        for item in applied:
            invoice = by_erp_id.get(str(item["invoice_id"]))
            if invoice is None:
                continue  # an invoice d2r did not issue
            target = engagement_workflow_id(invoice.opportunity_id)
            await workflow.get_external_workflow_handle(target).signal(
                "payment_received",
                PaymentNotice(
                    # One payment may settle several invoices: each part is its own receipt.
                    payment_id=f"{data.get('payment_id')}:{invoice.erp_invoice_id}",
                    invoice_id=invoice.invoice_id,
                    amount=Money(amount=Decimal(str(item["amount"])), currency=str(data.get("currency"))),
                    received_on=date.fromisoformat(str(data.get("tran_date"))),
                ),
            )
            routed.append(target)
        return InboundResult(routed_to=routed, note=f"payment applied to {len(routed)} d2r invoice(s)")

    async def _milestone(self, event: InboundEvent) -> InboundResult:
        data = event.data
        found: ProjectOpportunityResult = await workflow.execute_activity(
            "psa.project_opportunity",
            ProjectOpportunityInput(
                project_id=str(data.get("project_id")), legal_entity=data.get("legal_entity") or None
            ),
            result_type=ProjectOpportunityResult,
            task_queue=event.queues.psa,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=VENDOR_RETRY,
            summary=f"Which engagement owns project {data.get('project_id')}",
        )
        if found.opportunity_id is None:
            return InboundResult(routed_to=[], note="the project belongs to no engagement")
        target = engagement_workflow_id(found.opportunity_id)
        completed = str(data.get("actual_date") or workflow.now().date().isoformat())
        try:
            completed_on = date.fromisoformat(completed[:10])
        except ValueError as error:  # an event that cannot be read fails its own workflow, visibly
            raise ApplicationError(f"milestone.completed: {error}", type="InvalidEvent", non_retryable=True) from error
        await workflow.get_external_workflow_handle(target).signal(
            "milestone_completed",
            MilestoneNotice(milestone_id=str(data.get("milestone_id")), completed_on=completed_on),
        )
        return InboundResult(routed_to=[target], note="milestone completion noted")
