"""The engagement as the API hands it out: the view, plus what a person can do next — the
pending approvals with who may decide them, and `href` links to the actions the stage allows,
each with the roles its route accepts (the same tuples the routes check)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.engagement import EngagementView, WaitKind
from domain.approvals import excluded_deciders
from domain.model import ApprovalDecision
from domain.stages import Stage

# Who may call each route (api/engagements.py uses these same tuples).
START_ROLES = ("sales_ops", "integration_admin")
REVALIDATE_ROLES = ("sales_ops", "integration_admin")
RETRY_ROLES = ("integration_admin", "delivery_ops")
CANCEL_ROLES = ("sales_ops", "integration_admin")
DECIDE_ROLES = ("finance", "delivery_ops", "sales_ops")
AMEND_ROLES = ("delivery_ops", "sales_ops")
CREDIT_ROLES = ("finance", "delivery_ops", "sales_ops")
CLOSE_ROLES = ("finance", "integration_admin")
DELIVERED_ROLES = ("delivery_ops", "integration_admin")

ENDED = (Stage.CLOSED, Stage.CANCELLED)


class Link(BaseModel):
    href: str
    method: Literal["GET", "POST"] = "POST"
    roles: list[str] = Field(default_factory=list, description="roles the route accepts (scope and four eyes apply)")


class PendingApproval(BaseModel):
    approval_id: str
    subject: str
    requested_by: str
    requested_at: datetime
    approver_roles: list[str] = Field(description="any one of these roles may decide")
    not_by: list[str] = Field(description="four eyes: people who may not decide it (the requester, other deciders)")
    decide: Link = Field(description='POST {"decision": "approve" | "reject", "comment": "..."}')


class EngagementResource(EngagementView):
    """The engagement view with the next steps: `pending` approvals and `links` by action."""

    status: str = Field(
        default="RUNNING",
        description="its workflow's: RUNNING, COMPLETED, or how it ended otherwise (FAILED, TERMINATED, CANCELED, …)",
    )
    pending: list[PendingApproval] = Field(default_factory=list)
    links: dict[str, Link] = Field(default_factory=dict)


def href(opportunity_id: str, *tail: str) -> str:
    return "/".join([f"/v1/engagements/{opportunity_id}", *tail])


def resource(view: EngagementView, status: str = "RUNNING") -> EngagementResource:
    opp = view.opportunity_id
    if status != "RUNNING":  # its workflow has ended: nothing can be asked of it any more
        return EngagementResource(
            **view.model_dump(), status=status, links={"self": Link(href=href(opp), method="GET")}
        )
    pending = [
        PendingApproval(
            approval_id=a.approval_id,
            subject=a.subject,
            requested_by=a.requested_by,
            requested_at=a.requested_at,
            approver_roles=a.approver_roles,
            not_by=excluded_deciders(a, view.approvals),
            decide=Link(href=href(opp, "approvals", a.approval_id), roles=a.approver_roles),
        )
        for a in view.approvals
        if a.decision is ApprovalDecision.PENDING
    ]
    links = {"self": Link(href=href(opp), method="GET")}
    if view.stage not in ENDED:
        links["cancel"] = Link(href=href(opp, "cancel"), roles=list(CANCEL_ROLES))
    if view.stage == Stage.NEEDS_ATTENTION:
        links["revalidate"] = Link(href=href(opp, "revalidate"), roles=list(REVALIDATE_ROLES))
        links["retry"] = Link(href=href(opp, "retry"), roles=list(RETRY_ROLES))
    if view.stage == Stage.IN_DELIVERY:
        waiting = view.waiting_for
        if waiting is not None and waiting.kind is WaitKind.PERIOD_CLOSE and waiting.period:
            links["close_period"] = Link(href=href(opp, "periods", waiting.period, "close"), roles=list(CLOSE_ROLES))
        links["amendments"] = Link(href=href(opp, "amendments"), roles=list(AMEND_ROLES))
        if view.invoices:
            links["credit_memos"] = Link(href=href(opp, "credit-memos"), roles=list(CREDIT_ROLES))
        if not view.delivery_complete:
            links["delivery_complete"] = Link(href=href(opp, "delivery-complete"), roles=list(DELIVERED_ROLES))
    return EngagementResource(**view.model_dump(), status=status, pending=pending, links=links)
