"""Inputs and results of the PSA activities."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from contracts.window_stage import StagedWindow
from domain.billing import Delivery
from domain.deal import ContractLine, Engagement
from domain.system_records import BillingStatus, ProjectChange


class CreateProjectInput(BaseModel):
    engagement: Engagement
    external_id: str


class RemoveProjectInput(BaseModel):
    external_id: str
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class RemoveProjectResult(BaseModel):
    removed: bool


class ReadDeliveryInput(BaseModel):
    project_id: str
    lines: list[ContractLine]
    cutoff: date
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class MarkBilled(BaseModel):
    time_entry_ids: list[str]
    expense_ids: list[str]
    billed: bool  # False releases entries again (a credit memo that re-bills, or an undo)


class FeedbackInput(BaseModel):
    """Finance feedback to the project: billing status, and which entries are now billed."""

    project_id: str
    status: BillingStatus | None = None
    mark: MarkBilled | None = None
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class FeedbackResult(BaseModel):
    entries_updated: int


class ApplyChangeInput(BaseModel):
    project_id: str
    change: ProjectChange
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class SetStageInput(BaseModel):
    project_id: str
    stage: str
    active: bool
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class PsaAck(BaseModel):
    ok: bool = True


class ProjectOpportunityInput(BaseModel):
    project_id: str
    legal_entity: str | None = None  # routes to the entity's PSA (None: the default instance)


class ProjectOpportunityResult(BaseModel):
    opportunity_id: str | None


class FeedbackWindowInput(BaseModel):
    """The month-end window's PSA feedback, by engagement workflow id."""

    feedback: dict[str, FeedbackInput] = {}
    stage: StagedWindow | None = None  # set: the feedback of `staged` is in their outboxes there
    staged: list[str] = []


class ReadDeliveriesInput(BaseModel):
    """A month-end window's projects, read in bulk."""

    legal_entity: str
    projects: dict[str, list[ContractLine]]  # project id -> its contract lines
    cutoff: date
    stage: StagedWindow | None = None  # set: the deliveries go to the hub, the result names them


class DeliveriesResult(BaseModel):
    deliveries: dict[str, Delivery] = {}  # project id -> delivery (a project the PSA lacks is missing)
    staged: list[str] = []  # with a stage: the projects whose delivery it holds (the PSA's)
