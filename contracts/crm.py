"""Inputs and results of the CRM activities."""

from __future__ import annotations

from pydantic import BaseModel

from contracts.window_stage import StagedWindow
from domain.money import Money
from domain.system_records import BillingStatus, Notification


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


class BillingStatusWindowInput(BaseModel):
    """The month-end window's CRM feedback, by engagement workflow id."""

    statuses: dict[str, WriteBillingStatusInput] = {}
    stage: StagedWindow | None = None  # set: the statuses of `staged` are in their outboxes there
    staged: list[str] = []
