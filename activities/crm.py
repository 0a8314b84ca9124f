"""CRM activities: read the booked deal, write project and contract links back."""

from __future__ import annotations

from temporalio import activity

from activities.errors import translating_errors
from activities.window_stage import Stage, write_window
from connectors.ports import CrmPort
from contracts.crm import (
    Ack,
    BillingStatusWindowInput,
    NotifyInput,
    ReadOpportunityInput,
    SetContractValueInput,
    WriteBillingStatusInput,
    WriteLinksInput,
    WriteLinksResult,
)
from contracts.erp import WindowWriteResult
from domain.deal import OpportunitySnapshot
from domain.system_records import CrmLinks


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


class CrmFeedbackActivities:
    """Finance feedback and notifications into the CRM (separate from booking reads so the
    two can be throttled apart if a CRM org's API budget is tight)."""

    def __init__(self, crm: CrmPort, concurrency: int = 8, stage: Stage | None = None) -> None:
        self._crm = crm
        self._concurrency = concurrency
        self._stage = stage  # where a month-end window keeps its outboxes (the hub)

    @activity.defn(name="crm.write_billing_status_window")
    @translating_errors
    async def write_billing_status_window(self, data: BillingStatusWindowInput) -> WindowWriteResult:
        """A month-end window's billing statuses, each engagement's on its own."""

        async def one(item: WriteBillingStatusInput) -> None:
            await self._crm.write_billing_status(item.opportunity_id, item.status)

        refused = await write_window(
            data.statuses, self._stage, data.stage, data.staged, "crm", WriteBillingStatusInput, one, self._concurrency
        )
        return WindowWriteResult(refused=refused)

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
