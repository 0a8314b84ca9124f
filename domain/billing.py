"""Billing: what may be billed in a period, and the invoices that bill it.

`bill_period` is safe to run again and again: every source (time entry, expense,
milestone, retainer period) is measured against the append-only billed ledger, so a
re-run bills only what is new — late approvals, hours released by a credit memo, the
rest of an entry that a not-to-exceed cap cut short — and never bills anything twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, Field

from domain.contract import ContractState, LedgerRow, LineTerms, payment_terms_days
from domain.deal import BillingModel
from domain.fx import FxRateTable
from domain.model import (
    BilledPortion,
    BillingEvent,
    EntryStatus,
    ExceptionRecord,
    ExpenseEntry,
    Invoice,
    InvoiceLine,
    LegalEntity,
    Milestone,
    RateCard,
    Resource,
    Severity,
    SourceKind,
    TaxLine,
    TimeEntry,
    digest,
    record_id,
)
from domain.money import Money, allocate, sum_money
from domain.periods import period_end, periods_between
from domain.tax import TaxParty, TaxRules, determine_tax, line_tax

HOURS_QUANTUM = Decimal("0.01")


class Delivery(BaseModel):
    """What the PSA says happened: the facts billing and revenue are computed from."""

    time_entries: list[TimeEntry] = Field(default_factory=list)
    expenses: list[ExpenseEntry] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    rate_card: RateCard | None = None
    fx: FxRateTable = Field(default_factory=FxRateTable)

    def resource(self, resource_id: str) -> Resource | None:
        return next((r for r in self.resources if r.resource_id == resource_id), None)


class BillingRun(BaseModel):
    state: ContractState
    events: list[BillingEvent]
    exceptions: list[ExceptionRecord]

    def billing_marks(self, delivery: Delivery) -> BillingMarks:
        """What to tell the PSA after this run, per time entry and expense it touched.

        Only a source billed in full may be marked billed: marking an entry that a cap cut
        short would strand its remaining hours (the classic PSA bug this ledger prevents).
        """
        billed = self.state.billed_quantities()
        hours = {e.entry_id: e.hours for e in delivery.time_entries}
        full: list[str] = []
        partial: dict[str, Decimal] = {}
        for event in self.events:
            for p in event.portions:
                if p.source_kind not in (SourceKind.TIME, SourceKind.EXPENSE):
                    continue
                size = hours.get(p.source_id, Decimal(1))
                done = billed.get(p.source_id, Decimal(0))
                if done >= size:
                    full.append(p.source_id)
                else:
                    partial[p.source_id] = done
        return BillingMarks(
            fully_billed_time=[s for s in full if s in hours],
            fully_billed_expenses=[s for s in full if s not in hours],
            partially_billed_hours=partial,
        )


class BillingMarks(BaseModel):
    fully_billed_time: list[str]
    fully_billed_expenses: list[str]
    partially_billed_hours: dict[str, Decimal]  # entry id -> hours billed so far


class ValuationError(LookupError):
    pass


def _problem(
    state: ContractState, code: str, message: str, source_id: str, on: date, warning: bool = False
) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=record_id("exc", state.lineage.opportunity_id, code, source_id),
        lineage=state.lineage,
        code=code,
        message=message,
        source_id=source_id,
        raised_on=on,
        severity=Severity.WARNING if warning else Severity.ERROR,
    )


def _to_contract(state: ContractState, money: Money, on: date, fx: FxRateTable) -> Money:
    if money.currency == state.currency:
        return money
    return fx.convert(money, state.currency, on).converted


def bill_rate(state: ContractState, entry: TimeEntry, delivery: Delivery) -> Money:
    """The rate of the role worked, on the day worked, in the contract currency.

    Precedence: the contract line's negotiated rate for its role > the account's rate card
    > the region's > the generic one (the last three inside `RateCard.entry`).
    """
    line = state.terms[entry.contract_line_id].line
    resource = delivery.resource(entry.resource_id)
    role = entry.role or (resource.position_on(entry.work_date).role if resource else None)
    role = role or line.role
    if line.bill_rate is not None and (line.role is None or role == line.role):
        return _to_contract(state, line.bill_rate, entry.work_date, delivery.fx)
    if delivery.rate_card is None:
        raise ValuationError("no rate card")
    if role is None:
        raise ValuationError(f"no role for time entry {entry.entry_id}")
    rate = delivery.rate_card.bill_rate(role, entry.work_date)
    return _to_contract(state, rate, entry.work_date, delivery.fx)


def expense_value(state: ContractState, expense: ExpenseEntry, delivery: Delivery) -> Money:
    """An expense as re-billed: converted at the date incurred, plus the line's markup."""
    terms = state.terms[expense.contract_line_id]
    at_cost = _to_contract(state, expense.amount, expense.incurred_on, delivery.fx)
    return at_cost.times(1 + terms.expense_markup)


def _billable_time(state: ContractState, line_id: str, cutoff: date, delivery: Delivery) -> list[TimeEntry]:
    return sorted(
        (
            e
            for e in delivery.time_entries
            if e.contract_line_id == line_id
            and e.billable
            and e.status is EntryStatus.APPROVED
            and e.work_date <= cutoff
            and e.project_id == state.lineage.project_id
        ),
        key=lambda e: (e.work_date, e.entry_id),
    )


def _billable_expenses(state: ContractState, line_id: str, cutoff: date, delivery: Delivery) -> list[ExpenseEntry]:
    return sorted(
        (
            e
            for e in delivery.expenses
            if e.contract_line_id == line_id
            and e.billable
            and e.status is EntryStatus.APPROVED
            and e.incurred_on <= cutoff
            and e.project_id == state.lineage.project_id
        ),
        key=lambda e: (e.incurred_on, e.entry_id),
    )


def delivered_time_value(
    state: ContractState, line_id: str, cutoff: date, delivery: Delivery, terms: LineTerms | None = None
) -> Money:
    """Approved billable hours up to `cutoff` at bill rates, capped by any not-to-exceed."""
    total = state.zero()
    for entry in _billable_time(state, line_id, cutoff, delivery):
        try:
            total = total + bill_rate(state, entry, delivery).times(entry.hours)
        except (ValuationError, LookupError):
            continue  # bill_period reports it; revenue waits with billing
    cap = (terms or state.terms[line_id]).not_to_exceed
    return min(total, cap) if cap is not None else total


def _bill_time(
    state: ContractState,
    billed: Mapping[str, Decimal],
    line_id: str,
    terms: LineTerms,
    cutoff: date,
    delivery: Delivery,
    portions: list[BilledPortion],
    problems: list[ExceptionRecord],
) -> None:
    cap_left: Money | None = None
    if terms.not_to_exceed is not None:
        cap_left = terms.not_to_exceed - state.ledger_amount(line_id, SourceKind.TIME)
    for entry in _billable_time(state, line_id, cutoff, delivery):
        remaining = entry.hours - billed.get(entry.entry_id, Decimal(0))
        if remaining <= 0:
            continue
        try:
            rate = bill_rate(state, entry, delivery)
        except LookupError as exc:
            problems.append(_problem(state, "no_bill_rate", str(exc), entry.entry_id, cutoff))
            continue
        hours = remaining
        if cap_left is not None:
            if rate.is_positive() and rate.times(hours) > cap_left:
                # Bill what fits under the cap; the rest of the entry stays billable, so a
                # change order raising the cap can bill it later without re-billing any of it.
                hours = (cap_left.amount / rate.amount).quantize(HOURS_QUANTUM, ROUND_DOWN)
                problems.append(
                    _problem(
                        state,
                        "not_to_exceed_reached",
                        f"line {line_id}: {remaining - hours} h of {entry.entry_id} exceed the cap",
                        entry.entry_id,
                        cutoff,
                        warning=True,
                    )
                )
            if hours <= 0:
                continue
        amount = rate.times(hours)
        if cap_left is not None:
            cap_left = cap_left - amount
        portions.append(
            BilledPortion(source_kind=SourceKind.TIME, source_id=entry.entry_id, quantity=hours, amount=amount)
        )


def _bill_expenses(
    state: ContractState,
    billed: Mapping[str, Decimal],
    line_id: str,
    cutoff: date,
    delivery: Delivery,
    portions: list[BilledPortion],
    problems: list[ExceptionRecord],
) -> None:
    for expense in _billable_expenses(state, line_id, cutoff, delivery):
        if billed.get(expense.entry_id, Decimal(0)) >= 1:
            continue
        try:
            amount = expense_value(state, expense, delivery)
        except LookupError as exc:
            problems.append(_problem(state, "no_fx_rate", str(exc), expense.entry_id, cutoff))
            continue
        portions.append(
            BilledPortion(
                source_kind=SourceKind.EXPENSE, source_id=expense.entry_id, quantity=Decimal(1), amount=amount
            )
        )


def _bill_milestones(
    state: ContractState,
    billed: Mapping[str, Decimal],
    line_id: str,
    terms: LineTerms,
    cutoff: date,
    delivery: Delivery,
    portions: list[BilledPortion],
    problems: list[ExceptionRecord],
) -> None:
    milestones = sorted(
        (m for m in delivery.milestones if m.contract_line_id == line_id),
        key=lambda m: (m.due_date or date.max, m.milestone_id),
    )
    if not milestones:
        problems.append(
            _problem(
                state, "no_billing_milestones", f"line {line_id} bills on milestones but has none", line_id, cutoff
            )
        )
        return
    # The price not yet billed is split over the milestones not yet billed, by weight: the
    # last one takes the exact rest, so amendments and credits never strand a remainder.
    remaining = terms.line.amount - state.ledger_amount(line_id, SourceKind.MILESTONE)
    if remaining.is_negative():
        problems.append(
            _problem(
                state,
                "billed_above_price",
                f"line {line_id} is billed {-remaining} above its price: a credit memo is needed",
                line_id,
                cutoff,
            )
        )
        return
    open_ = [m for m in milestones if billed.get(m.milestone_id, Decimal(0)) < 1]
    if not open_ and remaining.is_positive():
        # Every milestone is billed but an amendment raised the price: bill the rest now
        # rather than strand it with no milestone left to carry it.
        portions.append(_price_adjustment(line_id, SourceKind.MILESTONE, remaining, len(state.ledger)))
        return
    if not any(m.completed_by(cutoff) for m in open_):
        return
    shares = (
        allocate(remaining, [m.weight for m in open_])
        if any(m.weight for m in open_)
        else allocate(remaining, [1] * len(open_))
    )
    for milestone, share in zip(open_, shares, strict=True):
        if milestone.completed_by(cutoff):
            portions.append(
                BilledPortion(
                    source_kind=SourceKind.MILESTONE,
                    source_id=milestone.milestone_id,
                    quantity=Decimal(1),
                    amount=share,
                )
            )


def _price_adjustment(line_id: str, kind: SourceKind, amount: Money, seq: int) -> BilledPortion:
    return BilledPortion(source_kind=kind, source_id=f"adjustment:{line_id}:{seq}", quantity=Decimal(1), amount=amount)


def service_periods(state: ContractState, terms: LineTerms) -> list[str]:
    start = terms.service_start or state.contract_start
    end = terms.service_end or state.contract_end
    if start is None or end is None:
        return []
    return periods_between(start, end)


def retainer_source_id(line_id: str, period: str) -> str:
    return f"retainer:{line_id}:{period}"


def _bill_retainer(
    state: ContractState,
    billed: Mapping[str, Decimal],
    line_id: str,
    terms: LineTerms,
    period: str,
    portions: list[BilledPortion],
    problems: list[ExceptionRecord],
) -> None:
    periods = service_periods(state, terms)
    if not periods:
        problems.append(
            _problem(
                state,
                "no_service_period",
                f"retainer line {line_id} has no service period",
                line_id,
                period_end(period),
            )
        )
        return
    open_ = [p for p in periods if billed.get(retainer_source_id(line_id, p), Decimal(0)) < 1]
    remaining = terms.line.amount - state.ledger_amount(line_id, SourceKind.RETAINER)
    if remaining.is_negative():
        problems.append(
            _problem(
                state,
                "billed_above_price",
                f"line {line_id} is billed {-remaining} above its price: a credit memo is needed",
                line_id,
                period_end(period),
            )
        )
        return
    if not open_ and remaining.is_positive():
        portions.append(_price_adjustment(line_id, SourceKind.RETAINER, remaining, len(state.ledger)))
        return
    if not open_ or open_[0] > period:
        return
    for p, share in zip(open_, allocate(remaining, [1] * len(open_)), strict=True):
        if p <= period:
            portions.append(
                BilledPortion(
                    source_kind=SourceKind.RETAINER,
                    source_id=retainer_source_id(line_id, p),
                    quantity=Decimal(1),
                    amount=share,
                )
            )


_DESCRIPTIONS = {
    SourceKind.TIME: "Professional services (time and materials)",
    SourceKind.EXPENSE: "Reimbursable expenses",
    SourceKind.MILESTONE: "Milestone billing",
    SourceKind.RETAINER: "Retainer",
}


def bill_period(state: ContractState, period: str, delivery: Delivery, event_date: date | None = None) -> BillingRun:
    """The billing events of `period` for one engagement, and the ledger rows they write.

    Cut-off is the period's last day: approved work up to it is billed, whenever it was
    approved (a late approval is simply billed by the next run).
    """
    cutoff = period_end(period)
    on = event_date or cutoff
    problems: list[ExceptionRecord] = []
    events: list[BillingEvent] = []
    ledger = list(state.ledger)
    billed = state.billed_quantities()
    booked: list[tuple[str, str, str]] = [
        *((e.entry_id, e.project_id, e.contract_line_id) for e in delivery.time_entries),
        *((e.entry_id, e.project_id, e.contract_line_id) for e in delivery.expenses),
    ]
    for entry_id, project_id, line_id in booked:
        if project_id == state.lineage.project_id and line_id not in state.terms:
            problems.append(
                _problem(
                    state,
                    "unknown_contract_line",
                    f"{entry_id} is booked to unknown contract line {line_id}",
                    entry_id,
                    cutoff,
                )
            )
    for line_id, terms in state.terms.items():
        if not terms.active:
            continue
        model = terms.line.billing_model
        by_kind: dict[SourceKind, list[BilledPortion]] = {k: [] for k in SourceKind}
        if model is BillingModel.TIME_AND_MATERIALS:
            _bill_time(state, billed, line_id, terms, cutoff, delivery, by_kind[SourceKind.TIME], problems)
        elif model in (BillingModel.FIXED_FEE, BillingModel.MILESTONE):
            _bill_milestones(state, billed, line_id, terms, cutoff, delivery, by_kind[SourceKind.MILESTONE], problems)
        elif model is BillingModel.RETAINER:
            _bill_retainer(state, billed, line_id, terms, period, by_kind[SourceKind.RETAINER], problems)
        _bill_expenses(state, billed, line_id, cutoff, delivery, by_kind[SourceKind.EXPENSE], problems)
        for kind, portions in by_kind.items():
            if not portions:
                continue
            event_id = record_id(
                "be",
                state.lineage.opportunity_id,
                period,
                line_id,
                kind.value,
                digest(len(ledger), *(f"{p.source_id}={p.quantity}" for p in portions)),
            )
            events.append(
                BillingEvent(
                    billing_event_id=event_id,
                    lineage=state.lineage,
                    contract_line_id=line_id,
                    billing_model=model,
                    kind=kind,
                    period=period,
                    event_date=on,
                    description=f"{_DESCRIPTIONS[kind]}: {terms.line.name}, {period}",
                    amount=sum_money((p.amount for p in portions), state.currency),
                    portions=portions,
                )
            )
            for p in portions:
                ledger.append(
                    LedgerRow(
                        seq=len(ledger),
                        source_kind=p.source_kind,
                        source_id=p.source_id,
                        contract_line_id=line_id,
                        quantity=p.quantity,
                        amount=p.amount,
                        document_id=event_id,
                        recorded_on=on,
                    )
                )
    # The state keeps each event without its portions: the ledger rows already hold them
    # (`ContractState.portions_of`), and a year-long engagement's state must stay well
    # under Temporal's payload limit.
    stored = [e.model_copy(update={"portions": []}) for e in events]
    new_state = state.model_copy(update={"ledger": ledger, "billing_events": [*state.billing_events, *stored]})
    return BillingRun(state=new_state, events=events, exceptions=problems)


def build_invoices(
    state: ContractState,
    events: list[BillingEvent],
    *,
    seller: LegalEntity,
    buyer: TaxParty,
    tax_rules: TaxRules,
    invoice_date: date,
    fx: FxRateTable | None = None,
    reporting_currency: str | None = None,
) -> tuple[ContractState, list[Invoice]]:
    """One invoice per customer, contract and currency; one line per billing event.

    The line is the document: its net is rounded here, its tax computed and rounded here.
    """
    invoiced = {il.billing_event_id for inv in state.invoices for il in inv.lines}
    groups: dict[tuple[str, str, str], list[BillingEvent]] = {}
    for event in events:
        if event.billing_event_id in invoiced:
            continue  # a retried step must not invoice the same event twice
        key = (event.lineage.customer_id, event.lineage.contract_id, event.amount.currency)
        groups.setdefault(key, []).append(event)
    invoices: list[Invoice] = []
    for (customer_id, contract_id, currency), group in groups.items():
        invoice_id = record_id("inv", contract_id, group[0].period, digest(*(e.billing_event_id for e in group)))
        lines: list[InvoiceLine] = []
        for n, event in enumerate(group, start=1):
            terms = state.terms[event.contract_line_id]
            determination = determine_tax(tax_rules, seller.tax_jurisdiction, buyer, invoice_date, terms.service_code)
            net = event.amount.rounded()
            lines.append(
                InvoiceLine(
                    invoice_line_id=f"{invoice_id}:{n}",
                    contract_line_id=event.contract_line_id,
                    billing_event_id=event.billing_event_id,
                    kind=event.kind,
                    description=event.description,
                    net=net,
                    tax=TaxLine(
                        treatment=determination.treatment,
                        jurisdiction=determination.jurisdiction,
                        rate=determination.rate,
                        amount=line_tax(net, determination),
                        note=determination.note,
                    ),
                )
            )
        net_total = sum_money((ln.net for ln in lines), currency)
        tax_total = sum_money((ln.tax.amount for ln in lines), currency)
        total = net_total + tax_total
        invoices.append(
            Invoice(
                invoice_id=invoice_id,
                lineage=group[0].lineage,
                customer_id=customer_id,
                currency=currency,
                invoice_date=invoice_date,
                due_date=invoice_date + timedelta(days=payment_terms_days(state.billing_terms)),
                period=group[0].period,
                lines=lines,
                net_total=net_total,
                tax_total=tax_total,
                total=total,
                functional=(
                    fx.convert(total, seller.functional_currency, invoice_date)
                    if fx is not None and seller.functional_currency != currency
                    else None
                ),
                reporting=(
                    fx.convert(total, reporting_currency, invoice_date)
                    if fx is not None and reporting_currency
                    else None
                ),
            )
        )
    new_state = state.model_copy(update={"invoices": [*state.invoices, *invoices]})
    return new_state, invoices


def invoice_period(
    state: ContractState,
    period: str,
    delivery: Delivery,
    *,
    seller: LegalEntity,
    buyer: TaxParty,
    tax_rules: TaxRules,
    invoice_date: date,
    reporting_currency: str | None = None,
) -> tuple[BillingRun, list[Invoice]]:
    """The period's billing run and its invoices in one step (what a period close calls)."""
    run = bill_period(state, period, delivery, event_date=invoice_date)
    state, invoices = build_invoices(
        run.state,
        run.events,
        seller=seller,
        buyer=buyer,
        tax_rules=tax_rules,
        invoice_date=invoice_date,
        fx=delivery.fx,
        reporting_currency=reporting_currency,
    )
    return run.model_copy(update={"state": state}), invoices


def tax_party(state: ContractState) -> TaxParty:
    return TaxParty(
        customer_id=state.customer.customer_id, country=state.customer.country or "", tax_id=state.customer.tax_id
    )


def unbilled_sources(state: ContractState, delivery: Delivery, cutoff: date) -> Mapping[str, Decimal]:
    """Approved billable hours not yet billed, per time entry (the PSA's unbilled WIP)."""
    out: dict[str, Decimal] = {}
    billed = state.billed_quantities()
    for line_id in state.terms:
        for entry in _billable_time(state, line_id, cutoff, delivery):
            left = entry.hours - billed.get(entry.entry_id, Decimal(0))
            if left > 0:
                out[entry.entry_id] = left
    return out
