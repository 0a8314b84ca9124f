"""CRM activities: read the booked deal, write project and contract links back."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.errors import translating_errors
from connectors.ports import BillingStatus, CrmLinks, CrmPort, Notification
from domain.deal import OpportunitySnapshot
from domain.money import Money


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
        await self._crm.write_links(
            data.opportunity_id, CrmLinks(project_id=data.project_id, contract_id=data.contract_id, status=data.status)
        )
        return WriteLinksResult(opportunity_id=data.opportunity_id, status=data.status)


class WriteBillingStatusInput(BaseModel):
    opportunity_id: str
    status: BillingStatus


class SetContractValueInput(BaseModel):
    opportunity_id: str
    amount: Money
    reason: str  # e.g. the amendment id, or "undo amendment AM-1"


class NotifyInput(BaseModel):
    external_id: str  # workflow id + step: a retried reminder is one reminder
    notification: Notification


class Ack(BaseModel):
    ok: bool = True
    detail: str | None = None


class CrmFeedbackActivities:
    """Finance feedback and notifications into the CRM (separate from booking reads so the
    two can be throttled apart if a CRM org's API budget is tight)."""

    def __init__(self, crm: CrmPort) -> None:
        self._crm = crm

    @activity.defn(name="crm.write_billing_status")
    @translating_errors
    async def write_billing_status(self, data: WriteBillingStatusInput) -> Ack:
        await self._crm.write_billing_status(data.opportunity_id, data.status)
        return Ack(detail=data.status.status)

    @activity.defn(name="crm.set_contract_value")
    @translating_errors
    async def set_contract_value(self, data: SetContractValueInput) -> Ack:
        await self._crm.set_contract_value(data.opportunity_id, data.amount)
        return Ack(detail=data.reason)

    @activity.defn(name="crm.notify")
    @translating_errors
    async def notify(self, data: NotifyInput) -> Ack:
        return Ack(detail=await self._crm.notify(data.external_id, data.notification))
