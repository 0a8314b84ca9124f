"""Four eyes by person: the requester never decides, and two approvals of one change need
two different subjects, whatever roles one subject holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.approvals import DecisionRefused, check_decision, decided, excluded_deciders, withdrawn_with
from domain.model import Approval

AT = datetime(2026, 11, 30, tzinfo=UTC)


def approval(n: int, roles: list[str], change: str = "AM-1") -> Approval:
    return Approval(
        approval_id=f"{change}:{n}",
        subject=f"amendment {change} ({'/'.join(roles)})",
        requested_by="sam",
        requested_at=AT,
        approver_roles=roles,
    )


def test_the_requester_may_not_decide_whatever_roles_they_hold() -> None:
    with pytest.raises(DecisionRefused, match="four eyes"):
        check_decision(approval(0, ["delivery_ops"]), "sam", {"delivery_ops", "finance", "sales_ops"})


def test_one_subject_with_both_roles_gives_only_one_of_the_two_approvals() -> None:
    delivery, finance = approval(0, ["delivery_ops"]), approval(1, ["finance"])
    both = {"delivery_ops", "finance"}
    check_decision(delivery, "pat", both, [delivery, finance])
    after = [decided(delivery, True, "pat", AT, None), finance]
    with pytest.raises(DecisionRefused, match="pat already decided AM-1:0"):
        check_decision(finance, "pat", both, after)
    assert check_decision(finance, "omar", {"finance"}, after) is finance


def test_approvals_of_another_change_do_not_count() -> None:
    other = decided(approval(0, ["finance"], change="CM-1"), True, "pat", AT, None)
    mine = approval(1, ["finance"])
    assert check_decision(mine, "pat", {"finance"}, [other, mine]) is mine


def test_a_role_outside_the_approval_is_refused() -> None:
    with pytest.raises(DecisionRefused, match="needs one of the roles"):
        check_decision(approval(0, ["finance"]), "ian", {"integration_admin"})


def test_whoever_rejected_a_deal_may_decide_it_again_once_it_is_fixed() -> None:
    """Each booking round of a deal is its own decision: the fixed deal asks afresh."""
    first = Approval(
        approval_id="deal:006A:0", subject="deal 006A", requested_by="sam", requested_at=AT, approver_roles=["finance"]
    )
    second = first.model_copy(update={"approval_id": "deal:006A:1"})
    rejected = decided(first, False, "fiona", AT, "terms")
    assert check_decision(second, "fiona", {"finance"}, [rejected, second]) is second
    assert excluded_deciders(second, [rejected, second]) == ["sam"]


def test_a_rejection_withdraws_the_other_approvals_of_its_change_only() -> None:
    delivery, finance, memo = approval(0, ["delivery_ops"]), approval(1, ["finance"]), approval(0, ["finance"], "CM-1")
    rejected = decided(delivery, False, "pat", AT, "no")
    after = withdrawn_with(rejected, [rejected, finance, memo], AT)
    assert [a.decision.value for a in after] == ["rejected", "withdrawn", "pending"]
    assert after[1].comment == "withdrawn: AM-1:0 was rejected by pat"
