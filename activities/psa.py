"""PSA activities: the project shell from the service-package template and its undo, the
delivery of a period, finance feedback, amendments' project changes and the close-out.
Each routes to the legal entity's PSA (connectors/routing.py)."""

from __future__ import annotations

from temporalio import activity

from activities.errors import translating_errors
from activities.window_stage import Stage, needed, write_window
from connectors.ports import PsaPort
from connectors.routing import PsaRouter
from contracts.erp import WindowWriteResult
from contracts.psa import (
    ApplyChangeInput,
    CreateProjectInput,
    DeliveriesResult,
    FeedbackInput,
    FeedbackResult,
    FeedbackWindowInput,
    ProjectOpportunityInput,
    ProjectOpportunityResult,
    PsaAck,
    ReadDeliveriesInput,
    ReadDeliveryInput,
    RemoveProjectInput,
    RemoveProjectResult,
    SetStageInput,
)
from contracts.window_stage import DELIVERY
from domain.billing import Delivery
from domain.system_records import ProjectRef

DELIVERY_PAGE = 50  # projects per bulk delivery read of a month-end window


class _Routed:
    def __init__(self, psa: PsaRouter) -> None:
        self._router = psa

    def _psa(self, legal_entity: str | None) -> PsaPort:
        return (self._router.for_entity(legal_entity) if legal_entity else self._router.instance()).psa


class PsaActivities(_Routed):
    @activity.defn(name="psa.create_project")
    @translating_errors
    async def create_project(self, data: CreateProjectInput) -> ProjectRef:
        return await self._psa(data.engagement.legal_entity).create_project(data.engagement, data.external_id)

    @activity.defn(name="psa.remove_project")
    @translating_errors
    async def remove_project(self, data: RemoveProjectInput) -> RemoveProjectResult:
        return RemoveProjectResult(removed=await self._psa(data.legal_entity).remove_project(data.external_id))


class PsaDeliveryActivities(_Routed):
    def __init__(self, psa: PsaRouter, stage: Stage | None = None) -> None:
        super().__init__(psa)
        self._stage = stage  # where a month-end window keeps its delivery and outboxes (the hub)

    @activity.defn(name="psa.read_delivery")
    @translating_errors
    async def read_delivery(self, data: ReadDeliveryInput) -> Delivery:
        return await self._psa(data.legal_entity).read_delivery(data.project_id, data.lines, data.cutoff)

    @activity.defn(name="psa.read_deliveries")
    @translating_errors
    async def read_deliveries(self, data: ReadDeliveriesInput) -> DeliveriesResult:
        """A month-end window's projects' delivery, read in bulk a page of projects at a time
        (a wide window stays a handful of PSA queries per page), heartbeating after each.
        With a stage, the deliveries go to the hub and the result names their projects."""
        psa, ids = self._psa(data.legal_entity), sorted(data.projects)
        deliveries: dict[str, Delivery] = {}
        for start in range(0, len(ids), DELIVERY_PAGE):
            page = {p: data.projects[p] for p in ids[start : start + DELIVERY_PAGE]}
            deliveries.update(await psa.read_deliveries(page, data.cutoff))
            activity.heartbeat(start + len(page))
        if data.stage is not None:
            await needed(self._stage).put(data.stage, DELIVERY, deliveries)
            return DeliveriesResult(staged=sorted(deliveries))
        return DeliveriesResult(deliveries=deliveries)

    @activity.defn(name="psa.feedback")
    @translating_errors
    async def feedback(self, data: FeedbackInput) -> FeedbackResult:
        return await self._feedback(data)

    @activity.defn(name="psa.feedback_window")
    @translating_errors
    async def feedback_window(self, data: FeedbackWindowInput) -> WindowWriteResult:
        """A month-end window's PSA feedback, each engagement's on its own."""
        refused = await write_window(
            data.feedback, self._stage, data.stage, data.staged, "psa", FeedbackInput, self._feedback
        )
        return WindowWriteResult(refused=refused)

    async def _feedback(self, data: FeedbackInput) -> FeedbackResult:
        psa = self._psa(data.legal_entity)
        updated = 0
        if data.mark and (data.mark.time_entry_ids or data.mark.expense_ids):
            updated = await psa.mark_billed(data.mark.time_entry_ids, data.mark.expense_ids, data.mark.billed)
        if data.status is not None:
            await psa.write_billing_status(data.project_id, data.status)
        return FeedbackResult(entries_updated=updated)

    @activity.defn(name="psa.apply_change")
    @translating_errors
    async def apply_change(self, data: ApplyChangeInput) -> PsaAck:
        await self._psa(data.legal_entity).apply_change(data.project_id, data.change)
        return PsaAck()

    @activity.defn(name="psa.set_stage")
    @translating_errors
    async def set_stage(self, data: SetStageInput) -> PsaAck:
        await self._psa(data.legal_entity).set_stage(data.project_id, data.stage, data.active)
        return PsaAck()


class PsaInboundActivities(_Routed):
    @activity.defn(name="psa.project_opportunity")
    @translating_errors
    async def project_opportunity(self, data: ProjectOpportunityInput) -> ProjectOpportunityResult:
        return ProjectOpportunityResult(
            opportunity_id=await self._psa(data.legal_entity).project_opportunity(data.project_id)
        )
