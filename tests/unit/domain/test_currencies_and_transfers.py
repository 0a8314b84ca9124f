"""A GBP and a JPY customer, a consultant transfer, and T&M billed in part under a cap."""

from __future__ import annotations

from decimal import Decimal

from domain.amendments import Amendment, AmendmentTreatment, LineChange, apply_amendment
from domain.billing import Delivery, bill_period, invoice_period, tax_party
from domain.contract import LineTerms
from domain.credit_memos import CreditLineRequest, CreditMemoRequest, apply_credit_memo
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.fx import FxRate, FxRateTable
from domain.intercompany import TransferPricing, intercompany_charges, split_by_entity
from domain.model import (
    ExpenseEntry,
    LegalEntity,
    Milestone,
    RateCard,
    RateCardEntry,
    Resource,
    ResourceTransfer,
    TimeEntry,
)
from domain.revenue import labour_cost, recognize_period
from domain.tax import TaxRate, TaxRules

from .conftest import contract, d, engagement, line, money

TAX = TaxRules(
    rates=[
        TaxRate(jurisdiction="GB", rate=Decimal("0.20"), effective_from=d("2011-01-04")),
        TaxRate(
            jurisdiction="JP",
            rate=Decimal("0.10"),
            effective_from=d("2019-10-01"),
            name="consumption tax",
            rounding="ROUND_DOWN",
        ),
    ]
)
UK01 = LegalEntity(
    code="UK01", name="d2r Ltd", functional_currency="GBP", tax_jurisdiction="GB", erp_instance="netsuite-eu"
)
JP01 = LegalEntity(
    code="JP01", name="d2r KK", functional_currency="JPY", tax_jurisdiction="JP", erp_instance="netsuite-apac"
)


def test_gbp_customer_vat_per_line():
    eng = engagement(
        line(
            "T", BillingModel.TIME_AND_MATERIALS, RevenueMethod.AS_DELIVERED, money("10000.00", "GBP"), role="Architect"
        ),
        customer=Customer(customer_id="001ACME", name="Acme plc", country="GB", tax_id="GB123456789"),
        legal_entity="UK01",
        currency="GBP",
    )
    state = contract(eng, {"T": LineTerms(line=eng.lines[0], expense_markup=Decimal("0.05"))})
    facts = Delivery(
        time_entries=[
            TimeEntry(
                entry_id="E1",
                resource_id="R1",
                project_id="PRJ-1",
                contract_line_id="T",
                work_date=d("2026-01-12"),
                hours=Decimal("37.5"),
                role="Architect",
            )
        ],
        expenses=[
            ExpenseEntry(
                entry_id="X1",
                resource_id="R1",
                project_id="PRJ-1",
                contract_line_id="T",
                incurred_on=d("2026-01-13"),
                amount=money("99.99", "GBP"),
            )
        ],
        rate_card=RateCard(
            rate_card_id="RC-UK",
            currency="GBP",
            entries=[
                RateCardEntry(
                    role="Architect",
                    bill_rate=Decimal("110.00"),
                    effective_from=d("2025-01-01"),
                    effective_to=d("2025-12-31"),
                ),
                RateCardEntry(role="Architect", bill_rate=Decimal("123.45"), effective_from=d("2026-01-01")),
            ],
        ),
    )
    _run, (inv,) = invoice_period(
        state, "2026-01", facts, seller=UK01, buyer=tax_party(state), tax_rules=TAX, invoice_date=d("2026-01-31")
    )
    # 37.5 h x 123.45 (2026 card) = 4,629.375 -> 4,629.38; VAT 925.876 -> 925.88.
    # 99.99 + 5 % = 104.9895 -> 104.99; VAT 20.998 -> 21.00.
    assert [(ln.net, ln.tax.amount) for ln in inv.lines] == [
        (money("4629.38", "GBP"), money("925.88", "GBP")),
        (money("104.99", "GBP"), money("21.00", "GBP")),
    ]
    assert (inv.net_total, inv.tax_total, inv.total) == (
        money("4734.37", "GBP"),
        money("946.88", "GBP"),
        money("5681.25", "GBP"),
    )


def test_jpy_customer_no_minor_units_milestones_and_a_retainer():
    eng = engagement(
        line("FF", BillingModel.FIXED_FEE, RevenueMethod.MILESTONE, money(1_000_000, "JPY")),
        line("RT", BillingModel.RETAINER, RevenueMethod.RATABLE, money(100_000, "JPY")),
        customer=Customer(customer_id="001NIPPON", name="Nippon KK", country="JP", tax_id="T1234567890123"),
        legal_entity="JP01",
        currency="JPY",
    )
    state = contract(eng)
    milestones = [
        Milestone(milestone_id=f"M{i}", name=f"Phase {i}", contract_line_id="FF", due_date=d(f"2026-0{i}-28"))
        for i in (1, 2, 3)
    ]
    fx = FxRateTable(rates=[FxRate(base="USD", quote="JPY", rate=Decimal(150), as_of=d("2026-01-01"))])
    done = [m.model_copy(update={"completed_on": m.due_date}) for m in milestones]
    amounts = []
    for n, period in enumerate(("2026-01", "2026-02", "2026-03"), start=1):
        facts = Delivery(milestones=done[:n] + milestones[n:], fx=fx)
        run, (inv,) = invoice_period(
            state,
            period,
            facts,
            seller=JP01,
            buyer=tax_party(state),
            tax_rules=TAX,
            invoice_date=d(f"{period}-28"),
            reporting_currency="USD",
        )
        state = run.state
        amounts.append([(ln.net.amount, ln.tax.amount.amount) for ln in inv.lines])
        if n == 1:
            # 366,667 + 36,667 = 403,334 JPY at 1/150 = 2,688.89 USD for the group report.
            assert inv.total == money(403_334, "JPY")
            assert inv.reporting and inv.reporting.rounded() == money("2688.89", "USD")
            assert inv.reporting.rate_date == d("2026-01-01")
        rev = recognize_period(state, period, facts, complete_lines={"FF", "RT"} if n == 3 else set())
        state = rev.state
        pos = {p.contract_line_id: p for p in rev.positions}
        if n == 1:
            # Billed 33,334 for January's retainer, recognized 33,333 (1/3, rounded): 1 deferred.
            assert pos["RT"].recognized == money(33_333, "JPY")
            assert pos["RT"].deferred == money(1, "JPY")
    # 1,000,000 JPY over three equal milestones: 333,334 / 333,333 / 333,333, tax 10 %
    # rounded down per line; the retainer 33,334 / 33,333 / 33,333.
    assert amounts == [
        [(333_334, 33_333), (33_334, 3_333)],
        [(333_333, 33_333), (33_333, 3_333)],
        [(333_333, 33_333), (33_333, 3_333)],
    ]
    for p in state.positions():
        assert p.recognized == p.net_billed == p.contract_price
        assert p.recognized.is_whole()


def test_consultant_transfer_splits_time_cost_and_intercompany():
    # Ben moves from UK01 to DE01 on 16 March, at a EUR cost rate from that day.
    ben = Resource(
        resource_id="R-BEN",
        name="Ben",
        role="Consultant",
        home_legal_entity="UK01",
        cost_rate=money("60.00", "GBP"),
        transfers=[
            ResourceTransfer(effective_from=d("2026-03-16"), legal_entity="DE01", cost_rate=money("70.00", "EUR"))
        ],
    )
    entries = [
        TimeEntry(
            entry_id=f"B{day}",
            resource_id="R-BEN",
            project_id="PRJ-1",
            contract_line_id="L1",
            work_date=d(f"2026-03-{day:02d}"),
            hours=Decimal(8),
        )
        for day in (12, 13, 16, 17, 18)
    ]
    split = split_by_entity(ben, entries)
    assert {k: [e.entry_id for e in v] for k, v in split.items()} == {
        "UK01": ["B12", "B13"],
        "DE01": ["B16", "B17", "B18"],
    }

    eng = engagement(
        line("L1", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("50000.00")),
        customer=Customer(customer_id="C", name="C", country="DE", tax_id="DE1"),
        legal_entity="DE01",
        currency="EUR",
    )
    state = contract(eng, {"L1": LineTerms(line=eng.lines[0], estimate_at_completion=money("20000.00"))})
    fx = FxRateTable(rates=[FxRate(base="GBP", quote="EUR", rate=Decimal("1.20"), as_of=d("2026-03-01"))])
    facts = Delivery(time_entries=entries, resources=[ben], fx=fx)
    # 16 h x 60.00 GBP x 1.20 = 1,152.00 EUR before; 24 h x 70.00 EUR = 1,680.00 after.
    assert labour_cost(state, "L1", d("2026-03-31"), facts) == money("2832.00")
    (charge,) = intercompany_charges(
        state.lineage, "2026-03", entries, [ben], TransferPricing(markups={"UK01>DE01": Decimal("0.08")})
    )
    # Only the UK01 days are intercompany: 16 h x 60.00 = 960.00 GBP + 8 % = 1,036.80 GBP.
    assert (charge.provider_entity, charge.hours, charge.amount) == ("UK01", Decimal(16), money("1036.80", "GBP"))
    assert charge.entry_ids == ["B12", "B13"]


def _tm_contract(cap: str):
    eng = engagement(
        line("T", BillingModel.TIME_AND_MATERIALS, RevenueMethod.AS_DELIVERED, money(cap), role="Senior"),
        customer=Customer(customer_id="C", name="C", country="DE", tax_id="DE1"),
        legal_entity="DE01",
        currency="EUR",
    )
    return contract(eng, {"T": LineTerms(line=eng.lines[0], not_to_exceed=money(cap))})


CARD = RateCard(
    rate_card_id="RC",
    currency="EUR",
    entries=[
        RateCardEntry(role="Senior", bill_rate=Decimal("150.00"), effective_from=d("2026-01-01")),
        RateCardEntry(role="Principal", bill_rate=Decimal("200.00"), effective_from=d("2026-01-01")),
    ],
)


def _entry(entry_id: str, day: str, hours: str, role: str = "Senior") -> TimeEntry:
    return TimeEntry(
        entry_id=entry_id,
        resource_id="R",
        project_id="PRJ-1",
        contract_line_id="T",
        work_date=d(day),
        hours=Decimal(hours),
        role=role,
    )


def test_partial_billing_under_a_cap_bills_the_rest_after_a_change_order():
    state = _tm_contract("1000.00")
    facts = Delivery(time_entries=[_entry("E1", "2026-01-05", "4"), _entry("E2", "2026-01-06", "4")], rate_card=CARD)
    run = bill_period(state, "2026-01", facts)
    # E1 fits (600.00); of E2 only 400.00 / 150.00 = 2.66 h fit (399.00); 1.34 h wait.
    (event,) = run.events
    assert [(p.source_id, p.quantity, p.amount) for p in event.portions] == [
        ("E1", Decimal(4), money("600.00")),
        ("E2", Decimal("2.66"), money("399.00")),
    ]
    assert [e.code for e in run.exceptions] == ["not_to_exceed_reached"]
    # The PSA may mark E1 billed, but not E2: 1.34 of its hours are still to bill.
    marks = run.billing_marks(facts)
    assert marks.fully_billed_time == ["E1"]
    assert marks.partially_billed_hours == {"E2": Decimal("2.66")}
    # Revenue as delivered is capped too: what cannot be billed is not earned yet.
    rev = recognize_period(run.state, "2026-01", facts)
    assert rev.entries[0].amount == money("1000.00")
    state = rev.state

    assert bill_period(state, "2026-02", facts).events == []  # still capped: nothing new
    state = apply_amendment(
        state,
        Amendment(
            amendment_id="CO-1",
            effective_date=d("2026-02-10"),
            treatment=AmendmentTreatment.PROSPECTIVE,
            reason="more advisory hours",
            changes=[LineChange(contract_line_id="T", price=money("2000.00"), not_to_exceed=money("2000.00"))],
        ),
        facts,
    ).state
    run = bill_period(state, "2026-02", facts)
    (event,) = run.events
    assert [(p.source_id, p.quantity, p.amount) for p in event.portions] == [("E2", Decimal("1.34"), money("201.00"))]
    assert run.state.billed_quantity("E2") == Decimal(4)
    assert bill_period(run.state, "2026-03", facts).events == []


def test_correction_credit_releases_the_entry_and_the_next_run_rebills_it():
    state = _tm_contract("100000.00")
    wrong = _entry("E2", "2026-01-06", "4", role="Principal")
    facts = Delivery(time_entries=[_entry("E1", "2026-01-05", "4"), wrong], rate_card=CARD)
    seller = LegalEntity(code="DE01", name="x", functional_currency="EUR", tax_jurisdiction="DE", erp_instance="eu")
    tax = TaxRules(rates=[TaxRate(jurisdiction="DE", rate=Decimal("0.19"), effective_from=d("2007-01-01"))])
    buyer = tax_party(state)
    run, (inv,) = invoice_period(
        state, "2026-01", facts, seller=seller, buyer=buyer, tax_rules=tax, invoice_date=d("2026-01-31")
    )
    assert inv.lines[0].net == money("1400.00") and inv.lines[0].tax.amount == money("266.00")
    # E2 was billed as a Principal (800.00); it was Senior work. Credit exactly E2, release it.
    cm = apply_credit_memo(
        run.state,
        CreditMemoRequest(
            credit_memo_id="CM-9",
            invoice_id=inv.invoice_id,
            memo_date=d("2026-02-02"),
            reason="wrong role billed",
            lines=[
                CreditLineRequest(
                    invoice_line_id=inv.lines[0].invoice_line_id, price_concession=False, rebill_source_ids=["E2"]
                )
            ],
        ),
    )
    assert cm.memo.net_total == money("800.00") and cm.memo.tax_total == money("152.00")
    assert cm.state.billed_quantity("E2") == 0 and cm.state.billed_quantity("E1") == 4
    fixed = Delivery(time_entries=[facts.time_entries[0], wrong.model_copy(update={"role": "Senior"})], rate_card=CARD)
    run2, (inv2,) = invoice_period(
        cm.state, "2026-02", fixed, seller=seller, buyer=buyer, tax_rules=tax, invoice_date=d("2026-02-28")
    )
    assert [(p.source_id, p.amount) for p in run2.events[0].portions] == [("E2", money("600.00"))]
    assert inv2.total == money("714.00")  # 600.00 + 19 % VAT
    state = run2.state
    assert state.net_billed("T") == money("1200.00")  # 1,400 - 800 + 600
    assert state.billed_quantity("E2") == 4
