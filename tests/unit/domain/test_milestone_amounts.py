"""The PSA's milestone amounts follow a price amendment (issue: they stayed at the old price)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.amendments import Amendment, AmendmentTreatment, LineChange, apply_amendment
from domain.billing import Delivery, bill_period
from domain.contract import open_contract
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.model import Milestone
from domain.money import Money
from domain.schedules import milestone_amounts


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def test_a_price_amendment_moves_the_open_milestones_and_keeps_the_billed_one() -> None:
    """FF 120,000 on M1/M2/M3 weighted 30/40/30: 36,000 / 48,000 / 36,000.

    M1 completes and bills 36,000 in March. The price moves to 150,000 in June: 114,000
    is left for M2 and M3 by 40:30 -> 65,142.857 and 48,857.14... rounded by largest
    remainder: 65,142.86 + 48,857.14 = 114,000.00; with M1's 36,000 the PSA's milestones
    add up to 150,000.00 (they stayed at 120,000 before).
    """
    line = ContractLine(
        line_id="FF",
        name="Implementation",
        billing_model=BillingModel.MILESTONE,
        revenue_method=RevenueMethod.MILESTONE,
        amount=usd("120000.00"),
    )
    eng = Engagement(
        opportunity_id="006M",
        name="Milestones",
        customer=Customer(customer_id="C", name="C", country="US"),
        legal_entity="US01",
        currency="USD",
        contract_value=usd("120000.00"),
        close_date=date(2026, 1, 5),
        billing_terms="Net 30",
        service_package="IMPL",
        lines=[line],
    )
    ms = [
        Milestone(
            milestone_id="M1", name="Design", contract_line_id="FF", weight=Decimal(30), due_date=date(2026, 3, 31)
        ),
        Milestone(
            milestone_id="M2", name="Build", contract_line_id="FF", weight=Decimal(40), due_date=date(2026, 7, 31)
        ),
        Milestone(
            milestone_id="M3", name="Live", contract_line_id="FF", weight=Decimal(30), due_date=date(2026, 11, 30)
        ),
    ]
    state = open_contract(eng, project_id="P", contract_id="K")
    assert milestone_amounts(state, ms) == {"M1": usd("36000.00"), "M2": usd("48000.00"), "M3": usd("36000.00")}

    done = [ms[0].model_copy(update={"completed_on": date(2026, 3, 20)}), *ms[1:]]
    state = bill_period(state, "2026-03", Delivery(milestones=done)).state
    amended = apply_amendment(
        state,
        Amendment(
            amendment_id="A1",
            effective_date=date(2026, 6, 15),
            treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
            reason="two more markets",
            changes=[LineChange(contract_line_id="FF", price=usd("150000.00"))],
        ),
        Delivery(milestones=done),
    ).state
    after = milestone_amounts(amended, done)
    assert after == {"M1": usd("36000.00"), "M2": usd("65142.86"), "M3": usd("48857.14")}
    assert sum(a.amount for a in after.values()) == Decimal("150000.00")
    # billing agrees: M2 completing in July bills exactly the PSA's amount
    july = [done[0], done[1].model_copy(update={"completed_on": date(2026, 7, 20)}), done[2]]
    (event,) = bill_period(amended, "2026-07", Delivery(milestones=july)).events
    assert event.amount == after["M2"]
