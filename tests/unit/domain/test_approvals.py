from datetime import datetime
from decimal import Decimal

import pytest

from domain.approvals import (
    ApprovalError,
    ApprovalPolicy,
    Approver,
    amendment_approver_roles,
    deal_approval_reasons,
    decide,
    request_approval,
)
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.model import ApprovalDecision

from .conftest import engagement, line, money

AT = datetime(2026, 1, 5, 9, 30)
POLICY = ApprovalPolicy(deal_thresholds={"EUR": Decimal("100000")},
                        amendment_threshold={"EUR": Decimal("10000")})


def test_big_or_non_standard_deals_wait_for_a_person():
    eng = engagement(line("L", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST,
                          money("150000.00")),
                     customer=Customer(customer_id="C", name="C"), legal_entity="DE01",
                     currency="EUR")
    assert len(deal_approval_reasons(eng, POLICY)) == 1
    odd = eng.model_copy(update={"billing_terms": "Net 120"})
    assert len(deal_approval_reasons(odd, POLICY)) == 2
    small = eng.model_copy(update={"contract_value": money("90000.00")})
    assert deal_approval_reasons(small, POLICY) == []
    assert amendment_approver_roles(Decimal("-15000"), "EUR", POLICY) == ["delivery", "finance"]
    assert amendment_approver_roles(Decimal("5000"), "EUR", POLICY) == ["delivery"]


def test_decisions_respect_roles_four_eyes_and_pending():
    approval = request_approval(workflow_id="engagement-006X", subject="credit_memo:CM-1",
                                requested_by="sam", requested_at=AT,
                                approver_roles=["finance"])
    with pytest.raises(ApprovalError):
        decide(approval, approve=True, by=Approver(user="sam", roles=["finance"]), at=AT)
    with pytest.raises(ApprovalError):
        decide(approval, approve=True, by=Approver(user="kim", roles=["sales"]), at=AT)
    with pytest.raises(ApprovalError):
        decide(approval, approve=False, by=Approver(user="kim", roles=["finance"]), at=AT)
    done = decide(approval, approve=True, by=Approver(user="kim", roles=["finance"]), at=AT,
                  comment="ok")
    assert (done.decision, done.decided_by, done.decided_at) == (
        ApprovalDecision.APPROVED, "kim", AT)
    with pytest.raises(ApprovalError):
        decide(done, approve=False, by=Approver(user="lee", roles=["finance"]), at=AT,
               comment="too late")
