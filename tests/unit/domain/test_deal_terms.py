"""Contract terms read from the deal: an estimate at completion, a not-to-exceed cap, a T&M
line sold with no amount, a deal-specific milestone schedule (docs/domain.md, "Deal terms")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.billing import Delivery, bill_period
from domain.contract import open_contract
from domain.deal import (
    DealRules,
    Engagement,
    FieldError,
    MilestonePlan,
    MilestonePlanSnapshot,
    OpportunityLineSnapshot,
    validate_deal,
)
from domain.model import RateCard, Resource, TimeEntry
from domain.money import Money
from domain.revenue import recognize_period
from tests.workflows.fakes import good_opportunity

RULES = DealRules(legal_entities={"US01": "USD"})


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def deal(*lines: OpportunityLineSnapshot, amount: str) -> Engagement | list[FieldError]:
    return validate_deal(good_opportunity().model_copy(update={"lines": list(lines), "amount": Decimal(amount)}), RULES)


FF = OpportunityLineSnapshot(
    line_id="FF",
    total_price=Decimal("120000"),
    billing_model="fixed_fee",
    revenue_method="cost_to_cost",
    estimate_at_completion=Decimal("80000"),
)
TM = OpportunityLineSnapshot(
    line_id="TM",
    billing_model="time_and_materials",
    role="Consultant",
    unit_price=Decimal("200"),
    not_to_exceed=Decimal("25000"),
)


def test_estimate_cap_and_a_t_and_m_line_with_no_amount() -> None:
    """FF 120,000 with EAC 80,000; TM at 200/h, no amount, capped at 25,000.

    Booked: 120,000 (the T&M line books 0, not an invented amount).
    January: 100 h of cost at 100/h = 10,000 of 80,000 = 12.5 % -> 15,000 recognized on FF
    at once (no amendment needed). TM: 150 h x 200 = 30,000 > the 25,000 cap -> 125 h
    billed = 25,000; the other 25 h stay unbilled and a not_to_exceed_reached warning says so.
    """
    eng = deal(FF, TM, amount="120000")
    assert isinstance(eng, Engagement), eng
    assert eng.contract_value == usd("120000")
    ff, tm = eng.lines
    assert ff.estimate_at_completion == usd("80000") and tm.amount == usd("0")
    assert tm.not_to_exceed == usd("25000") and tm.bill_rate == usd("200")
    state = open_contract(eng, project_id="P", contract_id="K")
    assert state.terms["FF"].estimate_at_completion == usd("80000")
    assert state.terms["TM"].not_to_exceed == usd("25000")

    ada = Resource(resource_id="R1", name="Ada", role="Architect", home_legal_entity="US01", cost_rate=usd("100"))

    def work(entry_id: str, line: str, hours: str) -> TimeEntry:
        return TimeEntry(
            entry_id=entry_id,
            resource_id="R1",
            project_id="P",
            contract_line_id=line,
            work_date=date(2026, 1, 15),
            hours=Decimal(hours),
            role="Consultant" if line == "TM" else None,
        )

    delivery = Delivery(
        time_entries=[work("E1", "FF", "100"), work("E2", "TM", "150")],
        resources=[ada],
        rate_card=RateCard(rate_card_id="RC", currency="USD"),
    )
    run = bill_period(state, "2026-01", delivery)
    assert [(e.contract_line_id, e.amount) for e in run.events] == [("TM", usd("25000"))]
    # (FF bills by milestones, none delivered yet: its own no_billing_milestones error)
    assert [(x.code, x.severity.value) for x in run.exceptions if x.source_id == "E2"] == [
        ("not_to_exceed_reached", "warning")
    ]
    assert run.state.billed_quantity("E2") == Decimal("125")
    revenue = recognize_period(run.state, "2026-01", delivery)
    assert not [x for x in revenue.exceptions if x.code == "revenue_not_computable"]
    by_line = {e.contract_line_id: e.amount for e in revenue.entries}
    assert by_line["FF"] == usd("15000")


def test_a_deal_specific_milestone_schedule() -> None:
    """A milestone line of 90,000 with its own plan: 20 % / 30 % / 50 %, or as amounts
    18,000 / 27,000 / 45,000 (weights in the line's currency); both are the same split."""
    base = OpportunityLineSnapshot(line_id="MS", total_price=Decimal("90000"), billing_model="milestone")
    by_percent = base.model_copy(
        update={
            "milestone_schedule": [
                MilestonePlanSnapshot(name="Design", percent=Decimal(20), planned_date=date(2026, 2, 27)),
                MilestonePlanSnapshot(name="Build", percent=Decimal(30), planned_date=date(2026, 5, 29)),
                MilestonePlanSnapshot(name="Go-live", percent=Decimal(50), planned_date=date(2026, 9, 30)),
            ]
        }
    )
    eng = deal(by_percent, amount="90000")
    assert isinstance(eng, Engagement), eng
    assert eng.lines[0].milestones == [
        MilestonePlan(name="Design", weight=Decimal(20), planned_date=date(2026, 2, 27)),
        MilestonePlan(name="Build", weight=Decimal(30), planned_date=date(2026, 5, 29)),
        MilestonePlan(name="Go-live", weight=Decimal(50), planned_date=date(2026, 9, 30)),
    ]
    by_amount = base.model_copy(
        update={
            "milestone_schedule": [
                MilestonePlanSnapshot(name="Design", amount=Decimal(18000)),
                MilestonePlanSnapshot(name="Build", amount=Decimal(27000)),
                MilestonePlanSnapshot(name="Go-live", amount=Decimal(45000)),
            ]
        }
    )
    eng = deal(by_amount, amount="90000")
    assert isinstance(eng, Engagement), eng
    assert [m.weight for m in eng.lines[0].milestones] == [Decimal(18000), Decimal(27000), Decimal(45000)]


def test_terms_that_do_not_fit_the_line_are_field_errors() -> None:
    field = "OpportunityLineItems[0]."
    cases = [
        (TM.model_copy(update={"estimate_at_completion": Decimal(1)}), "D2R_Estimate_At_Completion__c"),
        (FF.model_copy(update={"not_to_exceed": Decimal(1)}), "D2R_Not_To_Exceed__c"),
        (FF.model_copy(update={"estimate_at_completion": Decimal(0)}), "D2R_Estimate_At_Completion__c"),
        (
            FF.model_copy(update={"milestone_schedule": [MilestonePlanSnapshot(percent=Decimal(100))]}),
            "D2R_Milestone_Schedule__c",
        ),
        (
            OpportunityLineSnapshot(
                line_id="MS",
                total_price=Decimal("120000"),
                billing_model="milestone",
                milestone_schedule=[
                    MilestonePlanSnapshot(percent=Decimal(60)),
                    MilestonePlanSnapshot(percent=Decimal(30)),  # 90 %
                ],
            ),
            "D2R_Milestone_Schedule__c",
        ),
        (
            OpportunityLineSnapshot(
                line_id="MS",
                total_price=Decimal("120000"),
                billing_model="milestone",
                milestone_schedule=[
                    MilestonePlanSnapshot(percent=Decimal(50)),
                    MilestonePlanSnapshot(amount=Decimal(60000)),  # mixed
                ],
            ),
            "D2R_Milestone_Schedule__c",
        ),
        (FF.model_copy(update={"total_price": None}), "TotalPrice"),  # only T&M may have no amount
    ]
    for line, name in cases:
        result = deal(line, amount=str(line.total_price or 0))
        assert isinstance(result, list), (line, result)
        assert [e.field for e in result] == [field + name] if name != "TotalPrice" else [field + "TotalPrice"]
