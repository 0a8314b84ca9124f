"""Role cost rates from the rate card where a consultant has none of their own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.billing import Delivery
from domain.contract import LineTerms, open_contract
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.model import RateCard, RateCardEntry, Resource, TimeEntry
from domain.money import Money
from domain.revenue import labour_cost, recognize_period

FF = ContractLine(
    line_id="FF",
    name="Build",
    billing_model=BillingModel.FIXED_FEE,
    revenue_method=RevenueMethod.COST_TO_COST,
    amount=Money.of("120000.00", "USD"),
)
DEAL = Engagement(
    opportunity_id="006C",
    name="Cost rates",
    customer=Customer(customer_id="C", name="C", country="US"),
    legal_entity="US01",
    currency="USD",
    contract_value=FF.amount,
    close_date=date(2026, 1, 2),
    billing_terms="Net 30",
    service_package="IMPL",
    lines=[FF],
)
CARD = RateCard(
    rate_card_id="RC",
    currency="USD",
    entries=[
        RateCardEntry(role="Consultant", bill_rate=Decimal(180), cost_rate=Decimal(90), effective_from=date(2026, 1, 1))
    ],
)


def work(entry_id: str, resource: str, hours: int) -> TimeEntry:
    return TimeEntry(
        entry_id=entry_id,
        resource_id=resource,
        project_id="P",
        contract_line_id="FF",
        work_date=date(2026, 1, 20),
        hours=Decimal(hours),
    )


def test_the_cards_role_cost_applies_where_the_consultant_has_none() -> None:
    """Tim (Consultant, no cost rate of his own) 100 h at the card's 90 = 9,000; Ada (own
    rate 110) 50 h = 5,500 (her own rate, not the card's). Labour cost 14,500 of an
    estimate of 58,000 = 25 % -> 30,000.00 of FF's 120,000 recognized in January."""
    tim = Resource(resource_id="TIM", name="Tim", role="Consultant", home_legal_entity="US01")
    ada = Resource(
        resource_id="ADA", name="Ada", role="Consultant", home_legal_entity="US01", cost_rate=Money.of(110, "USD")
    )
    state = open_contract(
        DEAL,
        project_id="P",
        contract_id="K",
        line_terms={"FF": LineTerms(line=FF, estimate_at_completion=Money.of(58000, "USD"))},
    )
    delivery = Delivery(
        time_entries=[work("E1", "TIM", 100), work("E2", "ADA", 50)], resources=[tim, ada], rate_card=CARD
    )
    assert tim.cost_rate_on(date(2026, 1, 20), CARD) == Money.of(90, "USD")
    assert labour_cost(state, "FF", date(2026, 1, 31), delivery) == Money.of(14500, "USD")
    run = recognize_period(state, "2026-01", delivery)
    assert [e.amount for e in run.entries] == [Money.of("30000.00", "USD")]


def test_no_cost_rate_anywhere_is_an_exception_not_zero() -> None:
    """Without the card's cost (and none of his own) Tim's hours are not free: revenue is
    not computable and says why."""
    tim = Resource(resource_id="TIM", name="Tim", role="Consultant", home_legal_entity="US01")
    state = open_contract(
        DEAL,
        project_id="P",
        contract_id="K",
        line_terms={"FF": LineTerms(line=FF, estimate_at_completion=Money.of(58000, "USD"))},
    )
    no_cost = CARD.model_copy(update={"entries": [e.model_copy(update={"cost_rate": None}) for e in CARD.entries]})
    run = recognize_period(
        state, "2026-01", Delivery(time_entries=[work("E1", "TIM", 100)], resources=[tim], rate_card=no_cost)
    )
    assert run.entries == []
    assert [(x.code, "no cost rate for TIM (Consultant)" in x.message) for x in run.exceptions] == [
        ("revenue_not_computable", True)
    ]
