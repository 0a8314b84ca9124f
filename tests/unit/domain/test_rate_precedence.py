"""Rate precedence: the contract line's negotiated rate (for its role) > the account's rate
card > the region's > the generic one (docs/domain.md, "Rate precedence")."""

from __future__ import annotations

from decimal import Decimal

from domain.billing import Delivery, bill_period
from domain.deal import (
    AccountNode,
    BillingModel,
    ContractLine,
    Customer,
    DealRules,
    Engagement,
    OpportunityLineSnapshot,
    OpportunitySnapshot,
    RevenueMethod,
    validate_deal,
)
from domain.model import RateCard, RateCardEntry, TimeEntry
from domain.money import Money

from .conftest import contract, d, engagement, line, money

JAN = d("2026-01-01")


def entry(role: str, rate: str, account: str | None = None, region: str | None = None) -> RateCardEntry:
    return RateCardEntry(role=role, bill_rate=Decimal(rate), effective_from=JAN, account_id=account, region=region)


# The project's card: Consultant generic 160, US-East 170, the account's own 180, and
# another account's 999 (never applies); Architect generic 300, US-East 320; PM generic 230.
CARD = RateCard(
    rate_card_id="RC",
    currency="USD",
    account_id="ACC",
    region="US-East",
    entries=[
        entry("Consultant", "160"),
        entry("Consultant", "170", region="US-East"),
        entry("Consultant", "180", account="ACC"),
        entry("Consultant", "999", account="ACC-OTHER"),
        entry("Architect", "300"),
        entry("Architect", "320", region="US-East"),
        entry("Architect", "310", region="EU-West"),
        entry("Project Manager", "230"),
    ],
)


def time(entry_id: str, role: str, hours: str, line_id: str = "TM") -> TimeEntry:
    return TimeEntry(
        entry_id=entry_id,
        resource_id="R1",
        project_id="PRJ-1",
        contract_line_id=line_id,
        work_date=d("2026-01-12"),
        hours=Decimal(hours),
        role=role,
    )


def billed(eng: Engagement, *entries: TimeEntry) -> dict[str, Money]:
    run = bill_period(contract(eng), "2026-01", Delivery(time_entries=list(entries), rate_card=CARD))
    assert run.exceptions == []
    out: dict[str, Money] = {}
    for event in run.events:
        out[event.contract_line_id] = out.get(event.contract_line_id, Money.zero("USD")) + event.amount
    return out


def tm_line(line_id: str, bill_rate: str | None) -> ContractLine:
    base = line(line_id, BillingModel.TIME_AND_MATERIALS, RevenueMethod.AS_DELIVERED, money("50000.00", "USD"))
    return base.model_copy(update={"role": "Consultant", "bill_rate": money(bill_rate, "USD") if bill_rate else None})


def deal(*lines: ContractLine) -> Engagement:
    return engagement(
        *lines, customer=Customer(customer_id="ACC", name="Acme", country="US"), legal_entity="US01", currency="USD"
    )


def test_each_level_of_the_precedence() -> None:
    """Line TM carries the deal's 200 USD/h for Consultant; line CARD carries none.

    TM: Consultant 10 h x 200 (the line's rate beats the account's 180) = 2,000;
        Architect 5 h x 320 (no line rate for that role, no account entry: the region's
        320 beats the generic 300; EU-West's 310 is another region's) = 1,600;
        Project Manager 2 h x 230 (generic only) = 460; TM total 4,060.
    CARD: Consultant 10 h x 180 (the account's own card beats the region's 170, the
        generic 160; another account's 999 never applies) = 1,800.
    """
    eng = deal(tm_line("TM", "200.00"), tm_line("CARD", None))
    assert billed(
        eng,
        time("E1", "Consultant", "10"),
        time("E2", "Architect", "5"),
        time("E3", "Project Manager", "2"),
        time("E4", "Consultant", "10", line_id="CARD"),
    ) == {"TM": money("4060.00", "USD"), "CARD": money("1800.00", "USD")}
    # without the account's entry the region's 170 applies; without that, the generic 160
    no_account = CARD.model_copy(update={"entries": [e for e in CARD.entries if e.account_id != "ACC"]})
    assert no_account.bill_rate("Consultant", JAN) == money("170", "USD")
    generic = CARD.model_copy(update={"region": None})
    assert generic.bill_rate("Architect", JAN) == money("300", "USD")


def test_the_opportunity_lines_unit_price_is_the_t_and_m_lines_rate() -> None:
    """The defect: a T&M line sold at 200 USD/h (100 h x 200 = 20,000) billed at the
    card's 180. The unit price becomes the line's rate; a fixed-fee line has none."""
    opp = OpportunitySnapshot(
        opportunity_id="006R",
        name="Rates",
        stage="Closed Won",
        amount=Decimal("50000"),
        currency="USD",
        close_date=d("2026-01-05"),
        legal_entity="US01",
        billing_terms="Net 30",
        service_package="IMPL",
        accounts=[AccountNode(account_id="ACC", name="Acme", country="US")],
        lines=[
            OpportunityLineSnapshot(
                line_id="L-TM",
                quantity=Decimal(100),
                unit_price=Decimal(200),
                total_price=Decimal(20000),
                billing_model="time_and_materials",
                role="Consultant",
                hours=Decimal(100),
            ),
            OpportunityLineSnapshot(
                line_id="L-FF",
                quantity=Decimal(1),
                unit_price=Decimal(30000),
                total_price=Decimal(30000),
                billing_model="fixed_fee",
            ),
        ],
    )
    eng = validate_deal(opp, DealRules(legal_entities={"US01": "USD"}))
    assert isinstance(eng, Engagement)
    tm, ff = eng.lines
    assert tm.bill_rate == money("200", "USD") and ff.bill_rate is None
    # 12.5 h of Consultant time: 12.5 x 200 = 2,500 (not 12.5 x 180 = 2,250)
    entry = time("E1", "Consultant", "12.5", line_id="L-TM")
    run = bill_period(contract(eng), "2026-01", Delivery(time_entries=[entry], rate_card=CARD))
    assert [e.amount for e in run.events] == [money("2500.0", "USD")]
