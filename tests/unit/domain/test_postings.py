"""Posting journal lines come from the one chart of accounts (domain/journals.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.intercompany import IntercompanyCharge
from domain.journals import ChartOfAccounts, intercompany_journals
from domain.model import Lineage
from domain.money import Money
from domain.postings import expense_cost_lines, time_cost_lines


def _totals(lines: list) -> tuple[Decimal, Decimal]:  # type: ignore[type-arg]
    return (
        sum((Decimal(x.debit) for x in lines if x.debit), Decimal(0)),
        sum((Decimal(x.credit) for x in lines if x.credit), Decimal(0)),
    )


def test_time_and_expense_accrue_on_the_chart_of_accounts() -> None:
    coa = ChartOfAccounts()
    # 7.5 h at 120.333 EUR/h = 902.4975 -> 902.50 on the document
    time = time_cost_lines(Money(amount=Decimal("902.4975"), currency="EUR"), "time", "a0T1", "P1", coa)
    assert [(x.account, x.debit, x.credit) for x in time] == [
        ("5000 Project cost", "902.50", None),
        ("2400 Accrued payroll and expenses", None, "902.50"),
    ]
    expense = expense_cost_lines(Money(amount=Decimal("1999.5"), currency="JPY"), "taxi", "a0E1", "P1", coa)
    assert [x.account for x in expense] == [coa.project_expenses, coa.accrued_costs]
    assert _totals(expense) == (Decimal(2000), Decimal(2000))  # yen have no minor unit
    assert {x.source_id for x in time} == {"a0T1"} and {x.project_id for x in expense} == {"P1"}


def test_own_time_and_an_intercompany_charge_book_the_same_cost_account() -> None:
    coa = ChartOfAccounts(project_cost="5010 Delivery cost")
    usd = Money(amount=Decimal(1100), currency="USD")
    charge = IntercompanyCharge(
        charge_id="ic1",
        lineage=Lineage(opportunity_id="O", customer_id="C", project_id="P", contract_id="K", legal_entity="US01"),
        period="2026-11",
        charge_date=date(2026, 11, 30),
        provider_entity="UK01",
        receiver_entity="US01",
        resource_id="R1",
        hours=Decimal(10),
        cost=Money(amount=Decimal(1000), currency="USD"),
        markup=Decimal("0.10"),
        amount=usd,
        entry_ids=["a0T1:2026-11-02"],
    )
    _, receiver = intercompany_journals(charge, "USD", None, coa)
    own = time_cost_lines(usd, "time", "a0T1", "P", coa)
    assert receiver.lines[0].account == own[0].account == "5010 Delivery cost"
