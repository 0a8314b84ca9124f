"""Who must approve what, and whether a decision is allowed.

Pure rules for the workflow's update validators: the workflow records the decision (who,
when, why); this module says whether it may be taken.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.deal import Engagement
from domain.model import Approval, ApprovalDecision, record_id


class ApprovalError(ValueError):
    """The decision is not allowed (wrong role, four eyes, not pending, no reason)."""


class Approver(BaseModel):
    user: str
    roles: list[str]


class ApprovalPolicy(BaseModel):
    # Contract value above which a deal waits for a person, per currency.
    deal_thresholds: dict[str, Decimal] = Field(default_factory=dict)
    standard_billing_terms: list[str] = Field(default_factory=lambda: ["Net 30", "Net 45"])
    deal_roles: list[str] = Field(default_factory=lambda: ["deal_desk", "finance"])
    credit_memo_roles: list[str] = Field(default_factory=lambda: ["finance"])
    # Amendments changing the price by more than this (absolute, contract currency) need
    # delivery and finance; smaller ones delivery alone.
    amendment_threshold: dict[str, Decimal] = Field(default_factory=dict)


def deal_approval_reasons(engagement: Engagement, policy: ApprovalPolicy) -> list[str]:
    """Why a booked deal must wait for a person; empty when it may provision at once."""
    reasons = []
    limit = policy.deal_thresholds.get(engagement.currency)
    if limit is not None and engagement.contract_value.amount > limit:
        reasons.append(f"contract value {engagement.contract_value} exceeds "
                       f"{limit} {engagement.currency}")
    if engagement.billing_terms not in policy.standard_billing_terms:
        reasons.append(f"non-standard billing terms {engagement.billing_terms!r}")
    return reasons


def amendment_approver_roles(price_change: Decimal, currency: str,
                             policy: ApprovalPolicy) -> list[str]:
    limit = policy.amendment_threshold.get(currency)
    if limit is not None and abs(price_change) > limit:
        return ["delivery", "finance"]
    return ["delivery"]


def request_approval(*, workflow_id: str, subject: str, requested_by: str,
                     requested_at: datetime, approver_roles: list[str]) -> Approval:
    return Approval(approval_id=record_id("apr", workflow_id, subject), subject=subject,
                    requested_by=requested_by, requested_at=requested_at,
                    approver_roles=approver_roles)


def decide(approval: Approval, *, approve: bool, by: Approver, at: datetime,
           comment: str | None = None) -> Approval:
    """The decided approval, or ApprovalError saying why this person may not decide."""
    if approval.decision is not ApprovalDecision.PENDING:
        raise ApprovalError(f"approval {approval.approval_id} is already {approval.decision}")
    if by.user == approval.requested_by:
        raise ApprovalError("four eyes: the requester may not decide their own request")
    if not set(by.roles) & set(approval.approver_roles):
        raise ApprovalError(f"{by.user} has none of the roles {approval.approver_roles}")
    if not approve and not (comment and comment.strip()):
        raise ApprovalError("a rejection needs a reason")
    return approval.model_copy(update={
        "decision": ApprovalDecision.APPROVED if approve else ApprovalDecision.REJECTED,
        "decided_by": by.user, "decided_at": at, "comment": comment})
