"""Receivables, journals, periods, guards and serialization of the documents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.amendments import Amendment, AmendmentTreatment, LineChange, apply_amendment
from domain.billing import Delivery, bill_period, invoice_period, tax_party
from domain.contract import LineTerms
from domain.credit_memos import (
    CreditLineRequest,
    CreditMemoError,
    CreditMemoRequest,
    apply_credit_memo,
)
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.journals import credit_memo_journal, invoice_journal, revenue_journal
from domain.model import LegalEntity, RateCard, RateCardEntry, TimeEntry
from domain.periods import next_period, period_end, period_of, periods_between
from domain.receivables import PaymentError, invoice_status, receivables_summary, record_payment
from domain.revenue import recognize_period
from domain.tax import TaxRate, TaxRules

from .conftest import contract, d, engagement, line, money

GB = LegalEntity(code="UK01", name="d2r Ltd", functional_currency="GBP", tax_jurisdiction="GB", erp_instance="eu")
TAX = TaxRules(rates=[TaxRate(jurisdiction="GB", rate=Decimal("0.20"), effective_from=d("2011-01-04"))])
CARD = RateCard(
    rate_card_id="RC",
    currency="GBP",
    entries=[RateCardEntry(role="Dev", bill_rate=Decimal("100.00"), effective_from=d("2026-01-01"))],
)


def billed_tm():
    eng = engagement(
        line("T", BillingModel.TIME_AND_MATERIALS, RevenueMethod.AS_DELIVERED, money("5000.00", "GBP"), role="Dev"),
        customer=Customer(customer_id="C", name="C", country="GB", tax_id="GB1"),
        legal_entity="UK01",
        currency="GBP",
    )
    state = contract(eng)
    facts = Delivery(
        time_entries=[
            TimeEntry(
                entry_id="E1",
                resource_id="R",
                project_id="PRJ-1",
                contract_line_id="T",
                work_date=d("2026-01-10"),
                hours=Decimal(10),
            ),
            TimeEntry(
                entry_id="E2",
                resource_id="R",
                project_id="PRJ-1",
                contract_line_id="T",
                work_date=d("2026-01-11"),
                hours=Decimal(5),
            ),
        ],
        rate_card=CARD,
    )
    run, (inv,) = invoice_period(
        state, "2026-01", facts, seller=GB, buyer=tax_party(state), tax_rules=TAX, invoice_date=d("2026-01-31")
    )
    return run.state, inv, facts


def test_periods():
    assert period_of(d("2026-02-14")) == "2026-02"
    assert period_end("2028-02") == d("2028-02-29")
    assert next_period("2026-12") == "2027-01"
    assert periods_between(d("2025-11-15"), d("2026-02-01")) == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_payments_and_overdue():
    state, inv, _ = billed_tm()
    assert inv.total == money("1800.00", "GBP")  # 15 h x 100.00 + 20 % VAT
    state, pay = record_payment(
        state,
        payment_ref="PMT-1",
        invoice_id=inv.invoice_id,
        amount=money("1000.00", "GBP"),
        received_on=d("2026-02-20"),
    )
    again, same = record_payment(
        state,
        payment_ref="PMT-1",
        invoice_id=inv.invoice_id,
        amount=money("1000.00", "GBP"),
        received_on=d("2026-02-20"),
    )
    assert same == pay and again.payments == state.payments  # a retried payment is harmless
    status = invoice_status(state, inv.invoice_id, d("2026-03-05"))
    assert status.open == money("800.00", "GBP") and status.overdue and status.days_overdue == 3
    with pytest.raises(PaymentError):
        record_payment(
            state,
            payment_ref="PMT-2",
            invoice_id=inv.invoice_id,
            amount=money("800.01", "GBP"),
            received_on=d("2026-03-05"),
        )
    summary = receivables_summary(state, d("2026-03-05"))
    assert summary["collected"] == money("1000.00", "GBP")
    assert summary["overdue"] == money("800.00", "GBP")


def test_partial_credits_never_credit_more_tax_than_charged():
    state, inv, _ = billed_tm()
    line_id = inv.lines[0].invoice_line_id
    # 1,500.00 net, 300.00 VAT. Credit 333.33 (VAT 66.666 -> 66.67), then the rest.
    first = apply_credit_memo(
        state,
        CreditMemoRequest(
            credit_memo_id="CM-1",
            invoice_id=inv.invoice_id,
            memo_date=d("2026-02-01"),
            reason="discount",
            lines=[CreditLineRequest(invoice_line_id=line_id, amount=money("333.33", "GBP"))],
        ),
    )
    assert first.memo.tax_total == money("66.67", "GBP")
    rest = apply_credit_memo(
        first.state,
        CreditMemoRequest(
            credit_memo_id="CM-2",
            invoice_id=inv.invoice_id,
            memo_date=d("2026-02-02"),
            reason="cancelled",
            lines=[CreditLineRequest(invoice_line_id=line_id)],
        ),
    )
    assert rest.memo.net_total == money("1166.67", "GBP")
    assert rest.memo.tax_total == money("233.33", "GBP")  # 300.00 - 66.67, not 233.334
    assert credit_memo_journal(rest.memo, "2026-02").is_balanced()
    for bad in (
        CreditLineRequest(invoice_line_id=line_id, amount=money("0.01", "GBP")),
        CreditLineRequest(invoice_line_id="nope"),
    ):
        with pytest.raises(CreditMemoError):
            apply_credit_memo(
                rest.state,
                CreditMemoRequest(
                    credit_memo_id="CM-3", invoice_id=inv.invoice_id, memo_date=d("2026-02-03"), reason="x", lines=[bad]
                ),
            )
    with pytest.raises(CreditMemoError):  # the same memo id twice is refused, not doubled
        apply_credit_memo(
            first.state,
            CreditMemoRequest(
                credit_memo_id="CM-1",
                invoice_id=inv.invoice_id,
                memo_date=d("2026-02-01"),
                reason="discount",
                lines=[CreditLineRequest(invoice_line_id=line_id, amount=money("1.00", "GBP"))],
            ),
        )


def test_a_concession_cannot_release_work():
    state, inv, _ = billed_tm()
    with pytest.raises(CreditMemoError):
        apply_credit_memo(
            state,
            CreditMemoRequest(
                credit_memo_id="CM-1",
                invoice_id=inv.invoice_id,
                memo_date=d("2026-02-01"),
                reason="x",
                lines=[
                    CreditLineRequest(
                        invoice_line_id=inv.lines[0].invoice_line_id, price_concession=True, rebill_source_ids=["E1"]
                    )
                ],
            ),
        )


def test_journals_balance_and_the_contract_balance_is_unbilled_minus_deferred():
    state, inv, facts = billed_tm()
    rev = recognize_period(state, "2026-01", facts)
    inv_je, rev_je = invoice_journal(inv), revenue_journal(rev.entries, "2026-01", d("2026-01-31"))
    assert inv_je.is_balanced() and rev_je.is_balanced()
    account = "1250 Contract balance (unbilled / deferred)"
    balance = sum(
        (ln.debit.amount - ln.credit.amount for je in (inv_je, rev_je) for ln in je.lines if ln.account == account),
        Decimal(0),
    )
    pos = rev.state.position("T")
    assert balance == (pos.unbilled - pos.deferred).amount == 0


def test_missing_rate_becomes_an_exception_not_a_guess():
    state, _, facts = billed_tm()
    late = facts.model_copy(
        update={
            "time_entries": [
                TimeEntry(
                    entry_id="E3",
                    resource_id="R",
                    project_id="PRJ-1",
                    contract_line_id="T",
                    work_date=d("2025-12-31"),
                    hours=Decimal(1),
                )
            ]
        }
    )
    run = bill_period(state, "2026-01", late)
    assert run.events == [] and [e.code for e in run.exceptions] == ["no_bill_rate"]


def test_missing_estimate_is_reported():
    eng = engagement(
        line("F", BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST, money("1000.00")),
        customer=Customer(customer_id="C", name="C", country="DE"),
        legal_entity="DE01",
        currency="EUR",
    )
    rev = recognize_period(contract(eng), "2026-01", Delivery())
    assert [e.code for e in rev.exceptions] == ["revenue_not_computable"]


def test_results_cross_the_pydantic_json_boundary():
    state, inv, facts = billed_tm()
    result = apply_amendment(
        state,
        Amendment(
            amendment_id="CO-1",
            effective_date=d("2026-02-01"),
            treatment=AmendmentTreatment.PROSPECTIVE,
            reason="cap",
            changes=[
                LineChange(
                    contract_line_id="T",
                    replace=LineTerms(line=state.terms["T"].line, not_to_exceed=money("9000.00", "GBP")),
                )
            ],
        ),
        facts,
    )
    for model in (result, inv, recognize_period(state, "2026-01", facts)):
        assert type(model).model_validate_json(model.model_dump_json()) == model


def test_revenue_carries_reporting_amounts_and_reversals_mirror_them():
    from domain.fx import FxRate, FxRateTable
    from domain.revenue import reversal_of

    state, _, facts = billed_tm()
    fx = FxRateTable(rates=[FxRate(base="GBP", quote="USD", rate=Decimal("1.25"), as_of=d("2026-01-01"))])
    rev = recognize_period(state, "2026-01", facts.model_copy(update={"fx": fx}), reporting_currency="USD")
    (entry,) = rev.entries
    assert entry.amount == money("1500.00", "GBP")
    assert entry.reporting is not None
    assert entry.reporting.rounded() == money("1875.00", "USD")
    assert entry.reporting.rate_date == d("2026-01-01")
    back = reversal_of(entry, rev.state, d("2026-02-01"))
    assert back.amount == money("-1500.00", "GBP")
    # January's entry stays in January; its reversal lands in February, when it happened
    assert (entry.period, back.period, back.entry_date) == ("2026-01", "2026-02", d("2026-02-01"))
    assert back.reporting is not None and back.reporting.rounded() == money("-1875.00", "USD")


def test_invoicing_the_same_events_twice_is_harmless():
    from domain.billing import build_invoices

    state, inv, _ = billed_tm()
    events = [e for e in state.billing_events if e.billing_event_id == inv.lines[0].billing_event_id]
    again, invoices = build_invoices(
        state, events, seller=GB, buyer=tax_party(state), tax_rules=TAX, invoice_date=d("2026-01-31")
    )
    assert invoices == [] and again.invoices == state.invoices


def test_time_on_an_unknown_contract_line_is_reported():
    state, _, facts = billed_tm()
    stray = TimeEntry(
        entry_id="E9",
        resource_id="R",
        project_id="PRJ-1",
        contract_line_id="ZZ",
        work_date=d("2026-02-02"),
        hours=Decimal(1),
    )
    run = bill_period(state, "2026-02", facts.model_copy(update={"time_entries": [stray]}))
    assert [(e.code, e.source_id) for e in run.exceptions] == [("unknown_contract_line", "E9")]


def test_invoice_in_a_foreign_currency_records_the_functional_amount():
    from domain.fx import FxRate, FxRateTable

    eng = engagement(
        line("T", BillingModel.TIME_AND_MATERIALS, RevenueMethod.AS_DELIVERED, money("5000.00"), role="Dev"),
        customer=Customer(customer_id="C", name="C", country="US", tax_id="EIN1"),
        legal_entity="UK01",
        currency="EUR",
    )
    state = contract(eng)
    card = RateCard(
        rate_card_id="RC",
        currency="GBP",
        entries=[RateCardEntry(role="Dev", bill_rate=Decimal("100.00"), effective_from=d("2026-01-01"))],
    )
    fx = FxRateTable(
        rates=[
            FxRate(base="GBP", quote="EUR", rate=Decimal("1.16"), as_of=d("2026-01-01")),
            FxRate(base="GBP", quote="EUR", rate=Decimal("1.18"), as_of=d("2026-01-25")),
        ]
    )
    facts = Delivery(
        time_entries=[
            TimeEntry(
                entry_id="E1",
                resource_id="R",
                project_id="PRJ-1",
                contract_line_id="T",
                work_date=d("2026-01-10"),
                hours=Decimal(10),
            )
        ],
        rate_card=card,
        fx=fx,
    )
    _, (inv,) = invoice_period(
        state, "2026-01", facts, seller=GB, buyer=tax_party(state), tax_rules=TAX, invoice_date=d("2026-01-31")
    )
    # The GBP card rate converts at the work date (1.16): 10 h x 116.00 EUR = 1,160.00 EUR.
    # Export of services to a US business: out of scope, no VAT.
    assert inv.total == money("1160.00") and inv.tax_total == money("0.00")
    # UK01 books it in GBP at the invoice date's rate (1.18): 983.05 GBP.
    assert inv.functional is not None
    assert inv.functional.rounded() == money("983.05", "GBP")
    assert (inv.functional.rate_date, inv.functional.via) == (d("2026-01-25"), None)
