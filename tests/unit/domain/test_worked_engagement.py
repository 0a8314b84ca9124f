"""The seed's multi-country engagement, hand-computed, over three periods.

DE01 (Germany, EUR) sells to Globex SA (France, VAT-registered) a fixed-fee
implementation (L1: 120,000.00 EUR, cost-to-cost on an 80,000.00 estimate, billed on two
milestones weighted 40/60) and T&M advisory (L2: Senior Consultant at 150.00 EUR/h,
expenses + 10 %). Anna (DE01, cost 80.00 EUR/h) and Ben (UK01, cost 60.00 GBP/h) staff it.
GBP/EUR is 1.15 from 1 January and 1.20 from 1 March.

Jan: M1 done; L2 40 h + a 500.00 hotel; a 10 h entry of 28 Jan is still awaiting approval.
Feb: the 28 Jan entry is approved late; L2 60 h; on 15 Feb a change order raises L1 to
     135,000.00 and its estimate to 100,000.00 (cumulative catch-up).
Mar: goodwill credit of 1,000.00 on February's T&M line; L2 20 h; M2 done; close-out.
"""

from __future__ import annotations

from decimal import Decimal

from domain.amendments import (
    Amendment,
    AmendmentTreatment,
    LineChange,
    apply_amendment,
    compensate_amendment,
)
from domain.billing import Delivery, invoice_period, tax_party
from domain.contract import LineTerms
from domain.credit_memos import CreditLineRequest, CreditMemoRequest, apply_credit_memo
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.fx import FxRate, FxRateTable
from domain.intercompany import TransferPricing, intercompany_charges
from domain.journals import intercompany_journals, invoice_journal, revenue_journal
from domain.model import (
    EntryStatus,
    ExpenseEntry,
    LegalEntity,
    Milestone,
    RateCard,
    RateCardEntry,
    Resource,
    RevenueEntryKind,
    SourceKind,
    TimeEntry,
)
from domain.money import Money
from domain.revenue import recognize_period
from domain.tax import TaxRate, TaxRules, TaxTreatment

from .conftest import contract, d, engagement, line, money

DE01 = LegalEntity(
    code="DE01",
    name="d2r Consulting GmbH",
    functional_currency="EUR",
    tax_jurisdiction="DE",
    erp_instance="netsuite-eu",
)
TAX = TaxRules(rates=[TaxRate(jurisdiction="DE", rate=Decimal("0.19"), effective_from=d("2007-01-01"))])
FX = FxRateTable(
    rates=[
        FxRate(base="GBP", quote="EUR", rate=Decimal("1.15"), as_of=d("2026-01-01")),
        FxRate(base="GBP", quote="EUR", rate=Decimal("1.20"), as_of=d("2026-03-01")),
    ]
)
CARD = RateCard(
    rate_card_id="RC-EU",
    currency="EUR",
    entries=[
        RateCardEntry(role="Senior Consultant", bill_rate=Decimal("150.00"), effective_from=d("2026-01-01")),
    ],
)
ANNA = Resource(
    resource_id="R-ANNA", name="Anna", role="Senior Consultant", home_legal_entity="DE01", cost_rate=money("80.00")
)
BEN = Resource(
    resource_id="R-BEN", name="Ben", role="Senior Consultant", home_legal_entity="UK01", cost_rate=money("60.00", "GBP")
)
CUSTOMER = Customer(customer_id="001GLOBEX", name="Globex SA", country="FR", tax_id="FR40303265045")


def time(
    entry_id: str, who: Resource, line_id: str, day: str, hours: str, status: EntryStatus = EntryStatus.APPROVED
) -> TimeEntry:
    return TimeEntry(
        entry_id=entry_id,
        resource_id=who.resource_id,
        project_id="PRJ-1",
        contract_line_id=line_id,
        work_date=d(day),
        hours=Decimal(hours),
        status=status,
    )


M1 = Milestone(
    milestone_id="M1", name="Design sign-off", contract_line_id="L1", weight=Decimal(40), due_date=d("2026-01-31")
)
M2 = Milestone(milestone_id="M2", name="Go-live", contract_line_id="L1", weight=Decimal(60), due_date=d("2026-03-31"))

JAN_TIME = [
    time("T1", ANNA, "L1", "2026-01-15", "100"),  # 8,000.00 EUR cost
    time("T2", BEN, "L1", "2026-01-16", "50"),  # 3,000.00 GBP = 3,450.00 EUR cost
    time("T3", ANNA, "L2", "2026-01-20", "40"),  # 6,000.00 EUR billed
]
LATE = time("T4", ANNA, "L2", "2026-01-28", "10", EntryStatus.SUBMITTED)
FEB_TIME = [
    time("T5", ANNA, "L1", "2026-02-10", "150"),  # 12,000.00 EUR cost
    time("T6", BEN, "L1", "2026-02-12", "100"),  # 6,000.00 GBP = 6,900.00 EUR cost
    time("T7", ANNA, "L2", "2026-02-10", "60"),  # 9,000.00 EUR billed
]
MAR_TIME = [
    time("T8", ANNA, "L1", "2026-03-10", "500"),  # 40,000.00 EUR cost
    time("T9", BEN, "L1", "2026-03-12", "200"),  # 12,000.00 GBP = 14,400.00 EUR cost
    time("T10", ANNA, "L2", "2026-03-05", "20"),  # 3,000.00 EUR billed
]
HOTEL = ExpenseEntry(
    entry_id="X1",
    resource_id="R-ANNA",
    project_id="PRJ-1",
    contract_line_id="L2",
    incurred_on=d("2026-01-21"),
    amount=money("500.00"),
)


def delivery(time_entries, milestones) -> Delivery:
    return Delivery(
        time_entries=time_entries, expenses=[HOTEL], milestones=milestones, resources=[ANNA, BEN], rate_card=CARD, fx=FX
    )


def opening():
    eng = engagement(
        line("L1", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("120000.00")),
        line(
            "L2",
            BillingModel.TIME_AND_MATERIALS,
            RevenueMethod.AS_DELIVERED,
            money("30000.00"),
            role="Senior Consultant",
        ),
        customer=CUSTOMER,
        legal_entity="DE01",
        currency="EUR",
    )
    return contract(
        eng,
        {
            "L1": LineTerms(line=eng.lines[0], estimate_at_completion=money("80000.00")),
            "L2": LineTerms(line=eng.lines[1], expense_markup=Decimal("0.10")),
        },
    )


def bill(state, period, facts, invoice_date):
    run, invoices = invoice_period(
        state, period, facts, seller=DE01, buyer=tax_party(state), tax_rules=TAX, invoice_date=d(invoice_date)
    )
    assert run.exceptions == []
    return run.state, invoices


def test_three_periods_with_a_milestone_an_amendment_and_a_partial_credit():
    state = opening()
    m1_done = M1.model_copy(update={"completed_on": d("2026-01-30")})

    # ---- January ---------------------------------------------------------------------
    jan = delivery([*JAN_TIME, LATE], [m1_done, M2])
    state, (inv1,) = bill(state, "2026-01", jan, "2026-01-31")
    # M1 takes 40 % of 120,000.00; T3 is 40 h x 150.00; the hotel is 500.00 + 10 %.
    assert [(ln.kind, ln.net) for ln in inv1.lines] == [
        (SourceKind.MILESTONE, money("48000.00")),
        (SourceKind.TIME, money("6000.00")),
        (SourceKind.EXPENSE, money("550.00")),
    ]
    # DE seller, French VAT-registered buyer: reverse charge, no VAT, the legal note printed.
    assert {ln.tax.treatment for ln in inv1.lines} == {TaxTreatment.REVERSE_CHARGE}
    assert inv1.tax_total == money("0.00") and inv1.total == money("54550.00")
    assert inv1.due_date == d("2026-03-02")  # Net 30

    rev = recognize_period(state, "2026-01", jan)
    state = rev.state
    # L1: cost 8,000.00 + 3,450.00 = 11,450.00 of 80,000.00 -> 14.3125 % of 120,000.00.
    # L2: 6,000.00 time delivered (T4 is not approved yet) + 550.00 expenses as billed.
    assert {e.contract_line_id: e.amount for e in rev.entries} == {"L1": money("17175.00"), "L2": money("6550.00")}
    pos = {p.contract_line_id: p for p in rev.positions}
    assert pos["L1"].deferred == money("30825.00") and pos["L1"].unbilled.is_zero()
    assert pos["L2"].deferred.is_zero() and pos["L2"].unbilled.is_zero()
    je = revenue_journal(rev.entries, "2026-01", d("2026-01-31"))
    assert je.is_balanced() and je.lineage.opportunity_id == "006OPP1"
    assert invoice_journal(inv1).is_balanced()

    # ---- February ----------------------------------------------------------------------
    late_approved = LATE.model_copy(update={"status": EntryStatus.APPROVED, "approved_on": d("2026-02-03")})
    feb = delivery([*JAN_TIME, late_approved, *FEB_TIME], [m1_done, M2])

    change = Amendment(
        amendment_id="CO-1",
        effective_date=d("2026-02-15"),
        treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
        reason="data migration added",
        changes=[
            LineChange(
                contract_line_id="L1",
                price=money("135000.00"),
                estimate_at_completion=money("100000.00"),
                scope="Implementation incl. data migration",
            )
        ],
    )
    before_change = state
    result = apply_amendment(state, change, feb)
    state = result.state
    # Cost by 15 Feb: 11,450.00 + 12,000.00 + 6,900.00 = 30,350.00.
    # Old terms: 30,350 / 80,000 x 120,000 = 45,525.00; new: 30,350 / 100,000 x 135,000
    # = 40,972.50. Catch-up: -4,552.50 (the estimate grew faster than the price).
    (catch_up,) = result.applied.revenue_entries
    assert catch_up.kind is RevenueEntryKind.CATCH_UP and catch_up.amount == money("-4552.50")
    (effect,) = result.applied.effects
    assert (effect.left_to_bill_before, effect.left_to_bill_after) == (money("72000.00"), money("87000.00"))

    # The schedules either side of the change: M2 now carries 87,000.00, and the revenue
    # plan keeps January's actual, February's catch-up, and plans the rest for March.
    applied = result.applied
    assert applied.billing_before.by_period("L1") == {"2026-01": money("48000.00"), "2026-03": money("72000.00")}
    assert applied.billing_after.by_period("L1") == {"2026-01": money("48000.00"), "2026-03": money("87000.00")}
    assert applied.revenue_before.by_period("L1") == {
        "2026-01": money("17175.00"),
        "2026-02": money("51412.50"),
        "2026-03": money("51412.50"),
    }
    assert applied.revenue_after.by_period("L1") == {
        "2026-01": money("17175.00"),
        "2026-02": money("-4552.50"),
        "2026-03": money("122377.50"),
    }
    assert applied.revenue_after.total("L1") == money("135000.00")

    # The derived inverse puts the old terms back and reverses the catch-up exactly.
    undone = compensate_amendment(state, result.applied, d("2026-02-15"))
    assert undone.state.terms == before_change.terms
    assert undone.state.recognized("L1") == before_change.recognized("L1")
    inverse = result.applied.inverse()
    assert inverse.changes[0].replace == before_change.terms["L1"]

    state, (inv2,) = bill(state, "2026-02", feb, "2026-02-28")
    # The late-approved 10 h of 28 Jan are billed now, with February's 60 h; nothing twice.
    assert [(ln.kind, ln.net) for ln in inv2.lines] == [(SourceKind.TIME, money("10500.00"))]
    rev = recognize_period(state, "2026-02", feb)
    state = rev.state
    # L1: 40,972.50 - (17,175.00 - 4,552.50) = 28,350.00. L2: 10 h + 60 h = 10,500.00.
    assert {e.contract_line_id: e.amount for e in rev.entries} == {"L1": money("28350.00"), "L2": money("10500.00")}
    pos = {p.contract_line_id: p for p in rev.positions}
    assert pos["L1"].recognized == money("40972.50")
    assert pos["L1"].deferred == money("7027.50")  # 48,000.00 billed

    # ---- March -------------------------------------------------------------------------
    credit = apply_credit_memo(
        state,
        CreditMemoRequest(
            credit_memo_id="CM-1",
            invoice_id=inv2.invoice_id,
            memo_date=d("2026-03-15"),
            reason="goodwill: onboarding delays",
            lines=[
                CreditLineRequest(
                    invoice_line_id=inv2.lines[0].invoice_line_id, amount=money("1000.00"), price_concession=True
                )
            ],
        ),
    )
    state = credit.state
    assert credit.memo.total == money("1000.00") and credit.released == []

    m2_done = M2.model_copy(update={"completed_on": d("2026-03-31")})
    mar = delivery([*JAN_TIME, late_approved, *FEB_TIME, *MAR_TIME], [m1_done, m2_done])
    state, (inv3,) = bill(state, "2026-03", mar, "2026-03-31")
    # M2 bills all that is left of the amended price: 135,000.00 - 48,000.00.
    assert [(ln.kind, ln.net) for ln in inv3.lines] == [
        (SourceKind.MILESTONE, money("87000.00")),
        (SourceKind.TIME, money("3000.00")),
    ]

    rev = recognize_period(state, "2026-03", mar)
    state = rev.state
    # L1: cost 30,350.00 + 40,000.00 + 14,400.00 = 84,750.00 -> 84.75 % x 135,000.00
    # = 114,412.50, less 40,972.50 = 73,440.00.
    # L2: 16,500.00 + 3,000.00 delivered - 1,000.00 concession + 550.00 expenses
    # = 19,050.00, less 17,050.00 = 2,000.00.
    assert {e.contract_line_id: e.amount for e in rev.entries} == {"L1": money("73440.00"), "L2": money("2000.00")}
    pos = {p.contract_line_id: p for p in rev.positions}
    assert pos["L1"].deferred == money("20587.50")

    # Close-out: delivery complete, so revenue lands on the final transaction price.
    close = recognize_period(state, "2026-03", mar, complete_lines={"L1", "L2"})
    state = close.state
    assert {e.contract_line_id: e.amount for e in close.entries} == {"L1": money("20587.50")}
    final = {p.contract_line_id: p for p in close.positions}
    assert final["L1"].transaction_price == money("135000.00")
    assert final["L1"].recognized == final["L1"].net_billed == money("135000.00")
    assert final["L2"].billed == money("20050.00") and final["L2"].credited == money("1000.00")
    assert final["L2"].recognized == final["L2"].net_billed == money("19050.00")
    assert all(p.deferred.is_zero() and p.unbilled.is_zero() for p in final.values())

    # Every record carries the lineage back to the deal.
    for record in [*state.invoices, *state.credit_memos, *state.revenue_entries, *state.billing_events]:
        assert record.lineage == state.lineage

    # ---- intercompany: Ben works from UK01 on DE01's project --------------------------
    charges = [
        c
        for p in ("2026-01", "2026-02", "2026-03")
        for c in intercompany_charges(
            state.lineage, p, mar.time_entries, mar.resources, TransferPricing(), receiver_currency="EUR", fx=FX
        )
    ]
    # 50 h, 100 h, 200 h at 60.00 GBP, plus 10 %; booked by DE01 at 1.15, 1.15, 1.20.
    assert [(c.provider_entity, c.hours, c.amount) for c in charges] == [
        ("UK01", Decimal(50), money("3300.00", "GBP")),
        ("UK01", Decimal(100), money("6600.00", "GBP")),
        ("UK01", Decimal(200), money("13200.00", "GBP")),
    ]
    assert [c.receiver_amount.rounded() for c in charges if c.receiver_amount] == [
        money("3795.00"),
        money("7590.00"),
        money("15840.00"),
    ]
    provider_je, receiver_je = intercompany_journals(charges[2], "EUR")
    assert provider_je.legal_entity == "UK01" and receiver_je.legal_entity == "DE01"
    assert provider_je.is_balanced() and receiver_je.is_balanced()
    assert receiver_je.lines[0].debit == money("15840.00")


def test_billing_runs_are_idempotent():
    state = opening()
    m1_done = M1.model_copy(update={"completed_on": d("2026-01-30")})
    jan = delivery(JAN_TIME, [m1_done, M2])
    state, _ = bill(state, "2026-01", jan, "2026-01-31")
    state, again = bill(state, "2026-01", jan, "2026-01-31")
    assert again == []
    rev = recognize_period(state, "2026-01", jan)
    assert recognize_period(rev.state, "2026-01", jan).entries == []


def test_state_round_trips_through_json():
    state = opening()
    jan = delivery(JAN_TIME, [M1.model_copy(update={"completed_on": d("2026-01-30")}), M2])
    state, _ = bill(state, "2026-01", jan, "2026-01-31")
    state = recognize_period(state, "2026-01", jan).state
    assert type(state).model_validate_json(state.model_dump_json()) == state
    assert Money.model_validate_json(state.invoices[0].total.model_dump_json()) == state.invoices[0].total
