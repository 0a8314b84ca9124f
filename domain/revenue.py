"""Revenue recognition (ASC 606 / IFRS 15), per contract line and period.

Each period computes the *cumulative* revenue a line has earned by the period's end,
rounds that once, and posts the difference from what is already recognized. Rounding
the cumulative figure (not each period's slice) is what makes the last period land
exactly on the transaction price: no cent is lost or invented over the life of a line.

Methods: T&M as delivered; fixed fee by cost-to-cost (cumulative cost / estimate at
completion x price) or by milestone; retainers ratably over the service periods.
Re-billed expenses are recognized as billed (a pass-through, not a performance measure).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from domain.billing import Delivery, delivered_time_value, service_periods
from domain.contract import ContractState, LinePosition, LineTerms
from domain.deal import BillingModel, RevenueMethod
from domain.fx import Converted
from domain.model import (
    EntryStatus,
    ExceptionRecord,
    RevenueEntry,
    RevenueEntryKind,
    Severity,
    SourceKind,
    digest,
    record_id,
)
from domain.money import Money
from domain.periods import period_end, period_of


class RevenueRun(BaseModel):
    state: ContractState
    entries: list[RevenueEntry]
    positions: list[LinePosition]
    exceptions: list[ExceptionRecord]


class MissingEstimateError(LookupError):
    pass


def labour_cost(state: ContractState, line_id: str, cutoff: date, delivery: Delivery) -> Money:
    """Approved hours up to `cutoff` at each consultant's cost rate on the day worked (their
    own, else the rate card's for their role: `Resource.cost_rate_on`).

    Billable or not: non-billable hours still consume the budget, which is what cost-to-cost
    measures. A consultant transferred mid-project costs at the rate of the entity they
    were in on that day.
    """
    total = state.zero()
    for entry in delivery.time_entries:
        if (
            entry.contract_line_id != line_id
            or entry.status is not EntryStatus.APPROVED
            or entry.work_date > cutoff
            or entry.project_id != state.lineage.project_id
        ):
            continue
        resource = delivery.resource(entry.resource_id)
        if resource is None:
            raise LookupError(f"unknown resource {entry.resource_id}")
        cost = resource.cost_rate_on(entry.work_date, delivery.rate_card).times(entry.hours)
        if cost.currency != state.currency:
            cost = delivery.fx.convert(cost, state.currency, entry.work_date).converted
        total = total + cost
    return total


def progress_measure(
    state: ContractState, line_id: str, terms: LineTerms, period: str, delivery: Delivery, as_of: date | None = None
) -> tuple[Decimal, Decimal]:
    """(measure so far, measure at completion) for the line's revenue method.

    `as_of` measures inside a period (an amendment's effective date); by default the
    period's end.
    """
    cutoff = as_of or period_end(period)
    method = terms.line.revenue_method
    if method is RevenueMethod.COST_TO_COST:
        if terms.estimate_at_completion is None or not terms.estimate_at_completion.is_positive():
            raise MissingEstimateError(f"line {line_id} is cost-to-cost but has no estimate")
        return (labour_cost(state, line_id, cutoff, delivery).amount, terms.estimate_at_completion.amount)
    if method is RevenueMethod.MILESTONE:
        milestones = [m for m in delivery.milestones if m.contract_line_id == line_id]
        total = sum((m.weight for m in milestones), Decimal(0))
        done = sum((m.weight for m in milestones if m.completed_by(cutoff)), Decimal(0))
        return done, total
    if method is RevenueMethod.RATABLE:
        periods = service_periods(state, terms)
        if not periods:
            raise LookupError(f"line {line_id} is ratable but has no service period")
        return Decimal(sum(1 for p in periods if p <= period)), Decimal(len(periods))
    raise ValueError(f"{method} has no progress measure")


def fee_target(
    state: ContractState,
    line_id: str,
    terms: LineTerms,
    period: str,
    delivery: Delivery,
    complete: bool = False,
    as_of: date | None = None,
) -> Money:
    """Cumulative fee revenue earned by the end of `period` (or `as_of`), unrounded."""
    cutoff = as_of or period_end(period)
    price = terms.line.amount - state.fee_concessions(line_id)
    if terms.line.billing_model is BillingModel.TIME_AND_MATERIALS:
        if complete:
            return state.net_billed(line_id, {SourceKind.TIME})
        delivered = delivered_time_value(state, line_id, cutoff, delivery, terms)
        return delivered - state.fee_concessions(line_id)
    if complete:
        return price
    if terms.line.revenue_method is RevenueMethod.AS_DELIVERED:
        return min(delivered_time_value(state, line_id, cutoff, delivery, terms), price)
    measure, total = progress_measure(state, line_id, terms, period, delivery, cutoff)
    base = terms.base
    start_measure = base.measure if base else Decimal(0)
    start_revenue = base.recognized if base else state.zero()
    span = total - start_measure
    progress = Decimal(1) if span <= 0 else min(max((measure - start_measure) / span, Decimal(0)), Decimal(1))
    return start_revenue + (price - start_revenue).times(progress)


def line_target(
    state: ContractState,
    line_id: str,
    period: str,
    delivery: Delivery,
    complete: bool = False,
    terms: LineTerms | None = None,
    as_of: date | None = None,
) -> Money:
    """Cumulative revenue of the line, rounded once: the figure recognized must reach."""
    terms = terms or state.terms[line_id]
    fee = fee_target(state, line_id, terms, period, delivery, complete, as_of).rounded()
    return fee + state.net_billed(line_id, {SourceKind.EXPENSE})


def fee_recognized(state: ContractState, line_id: str) -> Money:
    return state.recognized(line_id) - state.net_billed(line_id, {SourceKind.EXPENSE})


def recognize_period(
    state: ContractState,
    period: str,
    delivery: Delivery,
    *,
    complete_lines: frozenset[str] | set[str] = frozenset(),
    entry_date: date | None = None,
    functional_currency: str | None = None,
    reporting_currency: str | None = None,
) -> RevenueRun:
    """The period's revenue entries, and deferred / unbilled per line after them.

    Running it twice for a period posts nothing the second time: the cumulative target
    is already met. `complete_lines` closes lines out at their final transaction price.
    """
    on = entry_date or period_end(period)
    entries: list[RevenueEntry] = []
    problems: list[ExceptionRecord] = []
    recognized_entries = list(state.revenue_entries)
    for line_id, terms in state.terms.items():
        complete = line_id in complete_lines
        try:
            target = line_target(state, line_id, period, delivery, complete)
        except LookupError as exc:
            problems.append(
                ExceptionRecord(
                    exception_id=record_id("exc", state.lineage.opportunity_id, "revenue", line_id, period),
                    lineage=state.lineage,
                    code="revenue_not_computable",
                    message=str(exc),
                    severity=Severity.ERROR,
                    source_id=line_id,
                    raised_on=on,
                )
            )
            continue
        so_far = state.recognized(line_id)
        amount = target - so_far
        if amount.is_zero():
            continue
        entry = RevenueEntry(
            revenue_entry_id=record_id(
                "rev",
                state.lineage.opportunity_id,
                period,
                line_id,
                digest(len(recognized_entries), str(amount.amount)),
            ),
            lineage=state.lineage,
            contract_line_id=line_id,
            period=period,
            entry_date=on,
            method=terms.line.revenue_method,
            amount=amount,
            cumulative=target,
            basis=_basis(terms, complete, target),
            functional=(
                delivery.fx.convert(amount, functional_currency, on)
                if functional_currency and functional_currency != amount.currency
                else None
            ),
            reporting=(
                delivery.fx.convert(amount, reporting_currency, on)
                if reporting_currency and reporting_currency != amount.currency
                else None
            ),
        )
        entries.append(entry)
        recognized_entries.append(entry)
    new_state = state.model_copy(update={"revenue_entries": recognized_entries})
    return RevenueRun(state=new_state, entries=entries, positions=new_state.positions(), exceptions=problems)


def _basis(terms: LineTerms, complete: bool, target: Money) -> str:
    if complete:
        return f"line complete: cumulative revenue set to the final transaction price {target}"
    words = {
        RevenueMethod.AS_DELIVERED: "approved time at bill rates, as delivered",
        RevenueMethod.COST_TO_COST: "cumulative cost / estimate at completion x price",
        RevenueMethod.MILESTONE: "completed milestone weight / total weight x price",
        RevenueMethod.RATABLE: "service periods elapsed / service periods x price",
    }[terms.line.revenue_method]
    if terms.base is not None:
        words += f" (prospective from amendment {terms.base.amendment_id})"
    return f"{words}; cumulative {target}"


def reversal_of(entry: RevenueEntry, state: ContractState, on: date) -> RevenueEntry:
    """The entry that undoes `entry` (compensation), dated when it is undone and in that
    period: the period the original was reported in never changes."""
    recognized = state.recognized(entry.contract_line_id) - entry.amount
    return entry.model_copy(
        update={
            "revenue_entry_id": record_id("rev-rev", entry.revenue_entry_id),
            "entry_date": on,
            "period": period_of(on),
            "kind": RevenueEntryKind.REVERSAL,
            "amount": -entry.amount,
            "cumulative": recognized,
            "basis": f"reversal of {entry.revenue_entry_id}",
            # The same rates as the original, so the reversal undoes it to the cent in every
            # currency it was reported in.
            "functional": _negated(entry.functional),
            "reporting": _negated(entry.reporting),
        }
    )


def _negated(converted: Converted | None) -> Converted | None:
    if converted is None:
        return None
    return converted.model_copy(update={"original": -converted.original, "converted": -converted.converted})
