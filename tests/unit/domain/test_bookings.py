"""Bookings are append-only: the deal as booked stays in its month, each change order is
its own movement in its effective month."""

from __future__ import annotations

from datetime import date

from domain.amendments import Amendment, AmendmentTreatment, LineChange, apply_amendment
from domain.billing import Delivery
from domain.bookings import booking_movements
from domain.contract import LineTerms
from domain.deal import BillingModel, Customer, RevenueMethod

from .conftest import contract, d, engagement, line, money

CUSTOMER = Customer(customer_id="C", name="C", country="US")


def amend(state, amendment_id: str, on: str, *changes: LineChange):  # type: ignore[no-untyped-def]
    amendment = Amendment(
        amendment_id=amendment_id,
        effective_date=d(on),
        treatment=AmendmentTreatment.PROSPECTIVE,
        reason="change order",
        changes=list(changes),
    )
    return apply_amendment(state, amendment, Delivery())


def test_a_change_order_books_its_difference_in_its_own_month() -> None:
    """Deal closed 2025-12-15: FF 120,000 USD + retainer 30,000 USD = 150,000 booked.

    A1 (2026-02-10) moves FF to 150,000: +30,000 booked 2026-02-10 (FF:A1).
    A2 (2026-03-05) cuts FF to 140,000 and adds a line X of 5,000: -10,000 (FF:A2) and
    +5,000 (X:A2) booked 2026-03-05. A3 (2026-03-20) only extends the retainer: nothing.
    December still shows 150,000; the movements add up to the current 175,000
    (140,000 + 30,000 + 5,000).
    """
    eng = engagement(
        line("FF", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("120000.00", "USD")),
        line("RT", BillingModel.RETAINER, RevenueMethod.RATABLE, money("30000.00", "USD")),
        customer=CUSTOMER,
        legal_entity="US01",
        currency="USD",
    )
    state = contract(
        eng,
        {
            "FF": LineTerms(line=eng.lines[0], estimate_at_completion=money("80000.00", "USD")),
            "RT": LineTerms(line=eng.lines[1], service_start=d("2026-01-01"), service_end=d("2026-03-31")),
        },
    )
    a1 = amend(state, "A1", "2026-02-10", LineChange(contract_line_id="FF", price=money("150000.00", "USD")))
    x = line("X", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("5000.00", "USD"))
    a2 = amend(
        a1.state,
        "A2",
        "2026-03-05",
        LineChange(contract_line_id="FF", price=money("140000.00", "USD")),
        LineChange(contract_line_id="X", add=LineTerms(line=x, estimate_at_completion=money("4000.00", "USD"))),
    )
    a3 = amend(a2.state, "A3", "2026-03-20", LineChange(contract_line_id="RT", service_end=d("2026-06-30")))

    moves = booking_movements(eng, [a1.applied, a2.applied, a3.applied])
    assert [(b.booking_id, b.booking_date, str(b.amount)) for b in moves] == [
        ("006OPP1:FF", date(2025, 12, 15), "120000.00 USD"),
        ("006OPP1:RT", date(2025, 12, 15), "30000.00 USD"),
        ("006OPP1:FF:A1", date(2026, 2, 10), "30000.00 USD"),
        ("006OPP1:FF:A2", date(2026, 3, 5), "-10000.00 USD"),
        ("006OPP1:X:A2", date(2026, 3, 5), "5000.00 USD"),
    ]
    assert [b.amendment_id for b in moves] == [None, None, "A1", "A2", "A2"]
    # the deal as booked never moves: December's bookings are the same before and after
    assert booking_movements(eng, [])[:2] == moves[:2]
    current = sum(t.line.amount.amount for t in a3.state.terms.values())
    assert sum(b.amount.amount for b in moves) == current == 175000
