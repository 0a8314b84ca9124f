"""Who must approve what, and whether a given person may decide: pure rules.

Deals over a threshold or with non-standard terms need a person; finance approves
credit memos; amendments need delivery, and finance too above a threshold. Four eyes, by
person (subject), never by role: whoever asked may not approve, and one person may not
give two approvals of the same change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.deal import Engagement
from domain.model import Approval, ApprovalDecision
from domain.money import Money


class ApprovalPolicy(BaseModel):
    # Deal value above which a person approves, per contract currency. A currency not
    # listed always needs approval: no threshold is not the same as no limit.
    deal_thresholds: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "USD": Decimal(250_000),
            "EUR": Decimal(230_000),
            "GBP": Decimal(200_000),
            "JPY": Decimal(35_000_000),
        }
    )
    standard_billing_terms: list[str] = Field(default_factory=lambda: ["Net 30", "Net 45"])
    deal_approver_roles: list[str] = Field(default_factory=lambda: ["finance"])
    amendment_finance_thresholds: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "USD": Decimal(25_000),
            "EUR": Decimal(23_000),
            "GBP": Decimal(20_000),
            "JPY": Decimal(3_500_000),
        }
    )
    credit_memo_approver_roles: list[str] = Field(default_factory=lambda: ["finance"])
    remind_after_hours: int = 48
    escalate_after_hours: int = 120


DEAL_APPROVAL_PREFIX = "deal:"


def deal_approval_id(opportunity_id: str, round_: int) -> str:
    return f"{DEAL_APPROVAL_PREFIX}{opportunity_id}:{round_}"


def deal_approval_reasons(engagement: Engagement, policy: ApprovalPolicy) -> list[str]:
    reasons = []
    threshold = policy.deal_thresholds.get(engagement.currency)
    if threshold is None:
        reasons.append(f"no approval threshold is configured for {engagement.currency}")
    elif engagement.contract_value.amount > threshold:
        reasons.append(f"contract value {engagement.contract_value} is over {threshold} {engagement.currency}")
    if engagement.billing_terms not in policy.standard_billing_terms:
        reasons.append(f"billing terms {engagement.billing_terms!r} are not standard")
    return reasons


def amendment_approver_roles(change_in_value: Money, policy: ApprovalPolicy) -> list[list[str]]:
    """One inner list per approval needed; each is satisfied by any of its roles."""
    needed = [["delivery_ops"]]
    threshold = policy.amendment_finance_thresholds.get(change_in_value.currency)
    if threshold is None or abs(change_in_value.amount) > threshold:
        needed.append(["finance"])
    return needed


def change_of(approval: Approval) -> str:
    """The change an approval belongs to: approvals of one change are `<change id>:<n>`. A
    deal's booking approval (`deal:<opportunity>:<round>`) is a change of its own each round:
    a deal fixed after a rejection asks again, and whoever rejected it may decide the new terms."""
    if approval.approval_id.startswith(DEAL_APPROVAL_PREFIX):
        return approval.approval_id
    return approval.approval_id.rpartition(":")[0] or approval.approval_id


class DecisionRefused(ValueError):
    """Why a decision may not be taken (the update validator's message)."""


def check_decision(
    approval: Approval | None, by: str, roles: frozenset[str] | set[str], approvals: Sequence[Approval] = ()
) -> Approval:
    """May `by` (a subject, holding `roles`) decide `approval`? `approvals` are the others the
    engagement holds: two approvals of one change need two different people, whatever roles
    one person holds."""
    if approval is None:
        raise DecisionRefused("no such approval")
    if approval.decision is not ApprovalDecision.PENDING:
        raise DecisionRefused(f"approval {approval.approval_id} is already {approval.decision.value}")
    if not set(roles) & set(approval.approver_roles):
        raise DecisionRefused(f"deciding {approval.subject} needs one of the roles {approval.approver_roles}")
    if by == approval.requested_by:
        raise DecisionRefused("four eyes: whoever requested it may not decide it")
    for other in approvals:
        same_change = change_of(other) == change_of(approval) and other.approval_id != approval.approval_id
        if same_change and other.decided_by == by:
            raise DecisionRefused(
                f"four eyes: {by} already decided {other.approval_id} of {change_of(approval)}; "
                "another person must decide this one"
            )
    return approval


def excluded_deciders(approval: Approval, approvals: Sequence[Approval] = ()) -> list[str]:
    """The people four eyes keeps from deciding `approval`: its requester, and whoever
    decided another approval of the same change."""
    excluded = [approval.requested_by]
    for other in approvals:
        same_change = change_of(other) == change_of(approval) and other.approval_id != approval.approval_id
        if same_change and other.decided_by and other.decided_by not in excluded:
            excluded.append(other.decided_by)
    return excluded


def withdrawn_with(rejected: Approval, approvals: Sequence[Approval], at: datetime) -> list[Approval]:
    """`approvals` after `rejected` was rejected: the other pending approvals of its change are
    withdrawn (one rejection decides the change), so none stays pending or keeps reminding."""
    return [
        a.model_copy(
            update={
                "decision": ApprovalDecision.WITHDRAWN,
                "decided_at": at,
                "comment": f"withdrawn: {rejected.approval_id} was rejected by {rejected.decided_by}",
            }
        )
        if a.decision is ApprovalDecision.PENDING
        and a.approval_id != rejected.approval_id
        and change_of(a) == change_of(rejected)
        else a
        for a in approvals
    ]


def decided(approval: Approval, approve: bool, by: str, at: datetime, comment: str | None) -> Approval:
    return approval.model_copy(
        update={
            "decision": ApprovalDecision.APPROVED if approve else ApprovalDecision.REJECTED,
            "decided_by": by,
            "decided_at": at,
            "comment": comment,
        }
    )
