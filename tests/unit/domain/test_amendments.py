"""Prospective versus cumulative catch-up, on the same change order, by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.amendments import (
    Amendment,
    AmendmentError,
    AmendmentTreatment,
    LineChange,
    apply_amendment,
    compensate_amendment,
)
from domain.billing import Delivery
from domain.contract import LineTerms
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.model import Resource, TimeEntry
from domain.revenue import recognize_period

from .conftest import contract, d, engagement, line, money

ANNA = Resource(resource_id="R", name="Anna", role="Consultant", home_legal_entity="DE01", cost_rate=money("100.00"))


def hours(entry_id: str, day: str, h: int) -> TimeEntry:
    return TimeEntry(
        entry_id=entry_id,
        resource_id="R",
        project_id="PRJ-1",
        contract_line_id="L1",
        work_date=d(day),
        hours=Decimal(h),
    )


def setup():
    eng = engagement(
        line("L1", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("100000.00")),
        customer=Customer(customer_id="C", name="C", country="DE", tax_id="DE1"),
        legal_entity="DE01",
        currency="EUR",
    )
    state = contract(eng, {"L1": LineTerms(line=eng.lines[0], estimate_at_completion=money("50000.00"))})
    jan = Delivery(time_entries=[hours("A", "2026-01-20", 100)], resources=[ANNA])  # 10,000.00
    state = recognize_period(state, "2026-01", jan).state  # 10,000 / 50,000 x 100,000
    assert state.recognized("L1") == money("20000.00")
    return state, jan


def change(treatment: AmendmentTreatment) -> Amendment:
    return Amendment(
        amendment_id="CO-7",
        effective_date=d("2026-02-01"),
        treatment=treatment,
        reason="phase 2 added",
        changes=[LineChange(contract_line_id="L1", price=money("120000.00"), estimate_at_completion=money("70000.00"))],
    )


FEB = Delivery(
    time_entries=[hours("A", "2026-01-20", 100), hours("B", "2026-02-20", 250)], resources=[ANNA]
)  # 35,000.00 cumulative cost


def test_cumulative_catch_up_restates_revenue_to_date():
    state, jan = setup()
    result = apply_amendment(state, change(AmendmentTreatment.CUMULATIVE_CATCH_UP), jan)
    # 10,000 / 70,000 x 120,000 = 17,142.857 -> 17,142.86; catch-up 17,142.86 - 20,000.00.
    assert [e.amount for e in result.applied.revenue_entries] == [money("-2857.14")]
    rev = recognize_period(result.state, "2026-02", FEB)
    # 35,000 / 70,000 x 120,000 = 60,000.00 cumulative.
    assert rev.state.recognized("L1") == money("60000.00")


def test_prospective_keeps_what_was_earned_and_spreads_the_rest():
    state, jan = setup()
    result = apply_amendment(state, change(AmendmentTreatment.PROSPECTIVE), jan)
    assert result.applied.revenue_entries == []
    base = result.state.terms["L1"].base
    assert base is not None and base.recognized == money("20000.00")
    assert base.measure == Decimal("10000.00")
    rev = recognize_period(result.state, "2026-02", FEB)
    # 20,000 + (120,000 - 20,000) x (35,000 - 10,000) / (70,000 - 10,000) = 61,666.67.
    assert rev.state.recognized("L1") == money("61666.67")
    done = recognize_period(rev.state, "2026-03", FEB, complete_lines={"L1"})
    assert done.state.recognized("L1") == money("120000.00")


def test_inverse_applied_as_an_amendment_restores_terms_and_revenue():
    state, jan = setup()
    result = apply_amendment(state, change(AmendmentTreatment.CUMULATIVE_CATCH_UP), jan)
    back = apply_amendment(result.state, result.applied.inverse(), jan)
    assert back.state.terms == state.terms
    assert back.state.recognized("L1") == state.recognized("L1")


def test_compensation_and_guards():
    state, jan = setup()
    result = apply_amendment(state, change(AmendmentTreatment.PROSPECTIVE), jan)
    with pytest.raises(AmendmentError):
        apply_amendment(result.state, change(AmendmentTreatment.PROSPECTIVE), jan)
    undone = compensate_amendment(result.state, result.applied, d("2026-02-02"))
    assert undone.state.terms == state.terms and undone.reversals == []
    assert undone.state.reverted_amendment_ids == ["CO-7"]
    with pytest.raises(AmendmentError):
        apply_amendment(
            state,
            Amendment(
                amendment_id="CO-8",
                effective_date=d("2026-02-01"),
                treatment=AmendmentTreatment.PROSPECTIVE,
                reason="drop the line",
                changes=[LineChange(contract_line_id="L1", remove=True)],
            ),
            jan,
        )


def test_adding_and_removing_a_line():
    state, jan = setup()
    new = line("L3", BillingModel.RETAINER, RevenueMethod.RATABLE, money("3000.00"))
    added = apply_amendment(
        state,
        Amendment(
            amendment_id="CO-9",
            effective_date=d("2026-02-01"),
            treatment=AmendmentTreatment.PROSPECTIVE,
            reason="support retainer",
            changes=[
                LineChange(
                    contract_line_id="L3",
                    add=LineTerms(line=new, service_start=d("2026-02-01"), service_end=d("2026-04-30")),
                )
            ],
        ),
        jan,
    )
    assert set(added.state.terms) == {"L1", "L3"}
    inverse = added.applied.inverse()
    assert inverse.changes[0].remove
    removed = apply_amendment(added.state, inverse, jan)
    assert set(removed.state.terms) == {"L1"}


def test_prospective_amendment_supplies_the_missing_estimate():
    # Booked without an estimate (the CRM carries none): no revenue could be recognized yet.
    eng = engagement(
        line("L1", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("100000.00")),
        customer=Customer(customer_id="C", name="C", country="DE", tax_id="DE1"),
        legal_entity="DE01",
        currency="EUR",
    )
    state = contract(eng, {"L1": LineTerms(line=eng.lines[0])})
    jan = Delivery(time_entries=[hours("A", "2026-01-20", 100)], resources=[ANNA])
    amendment = Amendment(
        amendment_id="EAC-1",
        effective_date=d("2026-02-01"),
        treatment=AmendmentTreatment.PROSPECTIVE,
        reason="estimate at completion agreed",
        changes=[LineChange(contract_line_id="L1", estimate_at_completion=money("50000.00"))],
    )
    result = apply_amendment(state, amendment, jan)
    base = result.state.terms["L1"].base
    assert base is not None and base.recognized == money("0.00") and base.measure == Decimal("10000.00")
    # February: 35,000 of 50,000 spent; the 100,000 follows the work after the amendment:
    # (35,000 - 10,000) / (50,000 - 10,000) x 100,000 = 62,500.00.
    assert recognize_period(result.state, "2026-02", FEB).state.recognized("L1") == money("62500.00")
