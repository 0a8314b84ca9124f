"""CRM activities: read the booked deal, write project and contract links back."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.errors import translating_errors
from connectors.ports import CrmLinks, CrmPort
from domain.deal import OpportunitySnapshot


class ReadOpportunityInput(BaseModel):
    opportunity_id: str


class WriteLinksInput(BaseModel):
    opportunity_id: str
    project_id: str | None
    contract_id: str | None
    status: str


class WriteLinksResult(BaseModel):
    opportunity_id: str
    status: str


class CrmActivities:
    def __init__(self, crm: CrmPort) -> None:
        self._crm = crm

    @activity.defn(name="crm.read_opportunity")
    @translating_errors
    async def read_opportunity(self, data: ReadOpportunityInput) -> OpportunitySnapshot:
        return await self._crm.read_opportunity(data.opportunity_id)

    @activity.defn(name="crm.write_links")
    @translating_errors
    async def write_links(self, data: WriteLinksInput) -> WriteLinksResult:
        # A plain field update is naturally idempotent: writing the same links twice is one state.
        await self._crm.write_links(data.opportunity_id, CrmLinks(
            project_id=data.project_id, contract_id=data.contract_id, status=data.status))
        return WriteLinksResult(opportunity_id=data.opportunity_id, status=data.status)
