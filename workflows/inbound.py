"""InboundEventWorkflow: one webhook event, routed durably to the engagement it concerns.

Its id is the event id, so a redelivered webhook finds the first run and does nothing
more; the lookups it needs (which engagement owns this invoice or project) are activities.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.engagement import MilestoneNotice
    from contracts.ids import engagement_workflow_id
    from contracts.inbound import InboundEvent, InboundResult
    from contracts.psa import ProjectOpportunityInput, ProjectOpportunityResult
    from workflows.engagement_support import VENDOR_RETRY


@workflow.defn(name="InboundEventWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
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
        # Receipts reach engagements with their entity's month-end close (read from the ERP
        # in bulk), and overdue invoices with the daily sweep: a signal per payment would
        # cost every engagement an Action per invoice.
        return InboundResult(
            routed_to=[],
            note=f"payment {event.data.get('payment_id')} is read from the ERP by the next month-end close",
        )

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
            messages.MILESTONE_COMPLETED,
            MilestoneNotice(milestone_id=str(data.get("milestone_id")), completed_on=completed_on),
        )
        return InboundResult(routed_to=[target], note="milestone completion noted")
