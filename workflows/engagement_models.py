"""Input, state and view of EngagementWorkflow (pydantic, through the data converter)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.deal import FieldError
from domain.money import Money
from domain.stages import Stage


class TaskQueues(BaseModel):
    crm: str = "d2r-crm"
    psa: str = "d2r-psa"
    erp: str = "d2r-erp"


class EngagementInput(BaseModel):
    opportunity_id: str
    requested_by: str | None = None
    queues: TaskQueues = Field(default_factory=TaskQueues)


class CancelRequest(BaseModel):
    reason: str
    by: str | None = None


class TimelineEntry(BaseModel):
    at: datetime
    stage: Stage
    note: str


class EngagementView(BaseModel):
    """Everything a person needs to read an engagement, returned by the `view` query."""

    workflow_id: str
    opportunity_id: str
    stage: Stage
    name: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    erp_customer_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None  # the ERP sales order
    legal_entity: str | None = None
    currency: str | None = None
    contract_value: Money | None = None
    billing_models: list[str] = Field(default_factory=list)
    errors: list[FieldError] = Field(default_factory=list)
    failure: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
