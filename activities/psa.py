"""PSA activities: the project shell from the service-package template and its undo, the
delivery of a period, finance feedback, amendments' project changes and the close-out.
Each routes to the legal entity's PSA (connectors/routing.py)."""

from __future__ import annotations

from datetime import date

from temporalio import activity

from activities.errors import translating_errors
from connectors.ports import PsaPort
from connectors.routing import PsaRouter
from contracts.psa import (
    ApplyChangeInput,
    CreateProjectInput,
    FeedbackInput,
    FeedbackResult,
    ProjectOpportunityInput,
    ProjectOpportunityResult,
    PsaAck,
    ReadDeliveryInput,
    RemoveProjectInput,
    RemoveProjectResult,
    SetStageInput,
)
from domain.billing import Delivery
from domain.deal import ContractLine
from domain.system_records import ProjectRef


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
    @activity.defn(name="psa.read_delivery")
    @translating_errors
    async def read_delivery(self, data: ReadDeliveryInput) -> Delivery:
        return await self._psa(data.legal_entity).read_delivery(data.project_id, data.lines, data.cutoff)

    async def read_deliveries(
        self, legal_entity: str, projects: dict[str, list[ContractLine]], cutoff: date
    ) -> dict[str, Delivery]:
        """Many projects' delivery at once, for the month-end batch (not an activity: the
        batch's own activity calls it)."""
        return await self._psa(legal_entity).read_deliveries(projects, cutoff)

    @activity.defn(name="psa.feedback")
    @translating_errors
    async def feedback(self, data: FeedbackInput) -> FeedbackResult:
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
