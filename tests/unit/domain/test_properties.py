"""Conservation laws, checked over generated engagements (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.amendments import (
    Amendment,
    AmendmentTreatment,
    LineChange,
    apply_amendment,
    compensate_amendment,
)
from domain.billing import Delivery, invoice_period, tax_party
from domain.contract import ContractState, LineTerms
from domain.credit_memos import CreditLineRequest, CreditMemoRequest, apply_credit_memo
from domain.deal import BillingModel, Customer, RevenueMethod
from domain.model import (
    EntryStatus,
    LegalEntity,
    Milestone,
    RateCard,
    RateCardEntry,
    Resource,
    TimeEntry,
)
from domain.money import Money, sum_money
from domain.periods import period_end
from domain.revenue import recognize_period
from domain.schedules import revenue_schedule
from domain.tax import TaxRate, TaxRules

from .conftest import contract, d, engagement, line

PERIODS = ["2026-01", "2026-02", "2026-03"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SELLER = LegalEntity(code="DE01", name="x", functional_currency="EUR", tax_jurisdiction="DE", erp_instance="eu")
TAX = TaxRules(rates=[TaxRate(jurisdiction="DE", rate=Decimal("0.19"), effective_from=date(2007, 1, 1))])
CUSTOMER = Customer(customer_id="C", name="C", country="DE", tax_id="DE1")
CARD = RateCard(
    rate_card_id="RC",
    currency="EUR",
    entries=[
        RateCardEntry(role="Senior", bill_rate=Decimal("137.50"), effective_from=date(2026, 1, 1)),
        RateCardEntry(role="Junior", bill_rate=Decimal("83.33"), effective_from=date(2026, 1, 1)),
    ],
)
RES = Resource(resource_id="R", name="R", role="Senior", home_legal_entity="DE01", cost_rate=Money.of("61.17", "EUR"))

cents = st.integers(min_value=1, max_value=50_000_000).map(
    lambda c: Money(amount=Decimal(c).scaleb(-2), currency="EUR")
)
quarter_hours = st.integers(min_value=1, max_value=48).map(lambda q: Decimal(q) / 4)
days = st.integers(min_value=0, max_value=89).map(lambda n: date(2026, 1, 1) + timedelta(n))


def check_positions(state: ContractState) -> None:
    for p in state.positions():
        assert not (p.deferred.is_positive() and p.unbilled.is_positive())
        assert p.net_billed == p.billed - p.credited
    invoiced = sum_money((i.net_total for i in state.invoices), state.currency)
    credited = sum_money((m.net_total for m in state.credit_memos), state.currency)
    assert invoiced - credited == sum_money((p.net_billed for p in state.positions()), state.currency)
    for inv in state.invoices:
        for il in inv.lines:
            net = sum_money(
                (cl.net for m in state.credit_memos for cl in m.lines if cl.invoice_line_id == il.invoice_line_id),
                state.currency,
            )
            tax = sum_money(
                (cl.tax for m in state.credit_memos for cl in m.lines if cl.invoice_line_id == il.invoice_line_id),
                state.currency,
            )
            assert net <= il.net and tax <= il.tax.amount
            if net == il.net:
                assert tax == il.tax.amount  # a fully credited line credits all its tax


@SETTINGS
@given(data=st.data())
def test_time_is_never_billed_twice_and_nets_add_up(data):
    n = data.draw(st.integers(1, 8))
    entries = []
    for i in range(n):
        worked = data.draw(days)
        approval_lag = data.draw(st.integers(0, 45))
        entries.append(
            TimeEntry(
                entry_id=f"E{i}",
                resource_id="R",
                project_id="PRJ-1",
                contract_line_id="T",
                work_date=worked,
                hours=data.draw(quarter_hours),
                role=data.draw(st.sampled_from(["Senior", "Junior"])),
                approved_on=worked + timedelta(approval_lag),
            )
        )
    cap = data.draw(st.none() | cents)
    eng = engagement(
        line(
            "T",
            BillingModel.TIME_AND_MATERIALS,
            RevenueMethod.AS_DELIVERED,
            cap or Money.of("100000.00", "EUR"),
            role="Senior",
        ),
        customer=CUSTOMER,
        legal_entity="DE01",
        currency="EUR",
    )
    state = contract(eng, {"T": LineTerms(line=eng.lines[0], not_to_exceed=cap)})
    for period in PERIODS:
        cutoff = period_end(period)
        # What the PSA shows at this close: entries approved by then are approved.
        visible = [
            e.model_copy(
                update={
                    "status": EntryStatus.APPROVED
                    if e.approved_on and e.approved_on <= cutoff
                    else EntryStatus.SUBMITTED
                }
            )
            for e in entries
        ]
        facts = Delivery(time_entries=visible, resources=[RES], rate_card=CARD)
        run, _ = invoice_period(
            state, period, facts, seller=SELLER, buyer=tax_party(state), tax_rules=TAX, invoice_date=cutoff
        )
        state = recognize_period(run.state, period, facts).state
        # A credit on some invoice line: a concession, or a correction releasing entries.
        if state.invoices and data.draw(st.booleans()):
            inv = data.draw(st.sampled_from(state.invoices))
            il = data.draw(st.sampled_from(inv.lines))
            credited = sum_money(
                (cl.net for m in state.credit_memos for cl in m.lines if cl.invoice_line_id == il.invoice_line_id),
                "EUR",
            )
            open_net = il.net - credited
            if open_net.is_positive():
                # Sources of a line already partly credited cannot be released (see memo rules).
                concession = not credited.is_zero() or data.draw(st.booleans())
                if concession:
                    units = data.draw(st.integers(1, int(open_net.amount * 100)))
                    req = CreditLineRequest(
                        invoice_line_id=il.invoice_line_id,
                        amount=Money(amount=Decimal(units).scaleb(-2), currency="EUR"),
                    )
                else:
                    req = CreditLineRequest(
                        invoice_line_id=il.invoice_line_id, price_concession=False
                    )  # whole line, re-bill all
                state = apply_credit_memo(
                    state,
                    CreditMemoRequest(
                        credit_memo_id=f"CM-{len(state.credit_memos)}",
                        invoice_id=inv.invoice_id,
                        memo_date=cutoff,
                        reason="property",
                        lines=[req],
                    ),
                ).state
        for e in entries:
            assert Decimal(0) <= state.billed_quantity(e.entry_id) <= e.hours
        check_positions(state)
    # After a last run with everything approved and no cap, every hour is billed exactly once.
    if cap is None:
        facts = Delivery(time_entries=entries, resources=[RES], rate_card=CARD)
        run, _ = invoice_period(
            state, "2026-04", facts, seller=SELLER, buyer=tax_party(state), tax_rules=TAX, invoice_date=d("2026-04-30")
        )
        for e in entries:
            assert run.state.billed_quantity(e.entry_id) == e.hours
        done = recognize_period(run.state, "2026-04", facts, complete_lines={"T"}).state
        check_positions(done)
        final = done.position("T")
        assert final.recognized == final.net_billed == final.transaction_price


@SETTINGS
@given(data=st.data())
def test_at_completion_recognized_revenue_is_the_final_transaction_price(data):
    model, method = data.draw(
        st.sampled_from(
            [
                (BillingModel.FIXED_FEE, RevenueMethod.COST_TO_COST),
                (BillingModel.FIXED_FEE, RevenueMethod.MILESTONE),
                (BillingModel.MILESTONE, RevenueMethod.MILESTONE),
                (BillingModel.RETAINER, RevenueMethod.RATABLE),
            ]
        )
    )
    price = data.draw(cents)
    eng = engagement(line("F", model, method, price), customer=CUSTOMER, legal_entity="DE01", currency="EUR")
    state = contract(eng, {"F": LineTerms(line=eng.lines[0], estimate_at_completion=data.draw(cents))})
    weights = data.draw(st.lists(st.integers(0, 10), min_size=1, max_size=4))
    milestones = [
        Milestone(
            milestone_id=f"M{i}",
            name=f"M{i}",
            contract_line_id="F",
            weight=Decimal(w),
            due_date=date(2026, 1 + i % 3, 28),
        )
        for i, w in enumerate(weights)
    ]
    done_in = [data.draw(st.integers(0, 2)) for _ in milestones]  # index of completing period
    entries = [
        TimeEntry(
            entry_id=f"E{i}",
            resource_id="R",
            project_id="PRJ-1",
            contract_line_id="F",
            work_date=data.draw(days),
            hours=data.draw(quarter_hours),
        )
        for i in range(data.draw(st.integers(0, 6)))
    ]
    amend_in = data.draw(st.none() | st.sampled_from(PERIODS))
    above_price = False
    for p_index, period in enumerate(PERIODS):
        cutoff = period_end(period)
        facts = Delivery(
            time_entries=entries,
            resources=[RES],
            milestones=[
                m.model_copy(update={"completed_on": cutoff}) if done_in[i] <= p_index else m
                for i, m in enumerate(milestones)
            ],
        )
        if amend_in == period:
            before = state
            result = apply_amendment(
                state,
                Amendment(
                    amendment_id="CO",
                    effective_date=cutoff - timedelta(days=10),
                    treatment=data.draw(st.sampled_from(list(AmendmentTreatment))),
                    reason="p",
                    changes=[
                        LineChange(
                            contract_line_id="F", price=data.draw(cents), estimate_at_completion=data.draw(cents)
                        )
                    ],
                ),
                facts,
            )
            # Compensation is exact: the old terms, and revenue back where it was.
            undone = compensate_amendment(result.state, result.applied, cutoff).state
            assert undone.terms == before.terms
            assert undone.recognized("F") == before.recognized("F")
            state = result.state
        run, invoices = invoice_period(
            state, period, facts, seller=SELLER, buyer=tax_party(state), tax_rules=TAX, invoice_date=cutoff
        )
        state = run.state
        above_price = above_price or any(e.code == "billed_above_price" for e in run.exceptions)
        if invoices and invoices[0].lines[0].net.is_positive() and data.draw(st.booleans()):
            il = invoices[0].lines[0]
            units = data.draw(st.integers(1, int(il.net.amount * 100)))
            state = apply_credit_memo(
                state,
                CreditMemoRequest(
                    credit_memo_id=f"CM-{period}",
                    invoice_id=invoices[0].invoice_id,
                    memo_date=cutoff,
                    reason="concession",
                    lines=[
                        CreditLineRequest(
                            invoice_line_id=il.invoice_line_id,
                            amount=Money(amount=Decimal(units).scaleb(-2), currency="EUR"),
                        )
                    ],
                ),
            ).state
        last = p_index == len(PERIODS) - 1
        state = recognize_period(state, period, facts, complete_lines={"F"} if last else set()).state
        check_positions(state)
        # The forward schedule always adds up to the transaction price.
        assert revenue_schedule(state, facts).total("F") == state.transaction_price("F")
    final = state.position("F")
    concessions = state.fee_concessions("F")
    assert final.recognized == final.transaction_price == final.contract_price - concessions
    if not above_price:
        # Everything delivered and billed: billing, too, lands on the transaction price.
        assert final.net_billed == final.transaction_price
        assert final.deferred.is_zero() and final.unbilled.is_zero()
