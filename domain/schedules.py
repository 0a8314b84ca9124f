"""Forward schedules: what a contract is expected to bill and recognize, period by period.

They feed the ERP's sales order and revenue arrangement at provisioning, and show the
effect of an amendment (schedule before vs after). Past periods show what actually
happened; only the rest is planned, so a schedule always adds up to the line's price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from domain.billing import Delivery, retainer_source_id, service_periods
from domain.contract import ContractState
from domain.deal import BillingModel, RevenueMethod
from domain.model import Lineage, Milestone, SourceKind
from domain.money import CurrencyCode, Money, allocate, sum_money
from domain.periods import Period, period_of, periods_between


class ScheduledAmount(BaseModel):
    contract_line_id: str
    period: Period
    amount: Money
    actual: bool  # True: already billed / recognized; False: planned


class Schedule(BaseModel):
    lineage: Lineage
    kind: str  # "billing" or "revenue"
    currency: CurrencyCode
    rows: list[ScheduledAmount]

    def total(self, line_id: str) -> Money:
        return sum_money((r.amount for r in self.rows if r.contract_line_id == line_id), self.currency)

    def by_period(self, line_id: str) -> dict[str, Money]:
        out: dict[str, Money] = {}
        for r in self.rows:
            if r.contract_line_id == line_id:
                out[r.period] = out[r.period] + r.amount if r.period in out else r.amount
        return out


def _line_periods(state: ContractState, line_id: str) -> list[str]:
    periods = service_periods(state, state.terms[line_id])
    if periods:
        return periods
    if state.contract_start and state.contract_end:
        return periods_between(state.contract_start, state.contract_end)
    return []


def _spread(
    line_id: str, amount: Money, periods: list[str], weights: Sequence[Decimal] | None = None
) -> list[ScheduledAmount]:
    # No period to plan in (no service or contract dates): nothing can be scheduled.
    if not periods or "" in periods or amount.is_zero():
        return []
    shares = allocate(amount, weights or [1] * len(periods))
    return [
        ScheduledAmount(contract_line_id=line_id, period=p, amount=s, actual=False)
        for p, s in zip(periods, shares, strict=True)
        if not s.is_zero()
    ]


def revenue_schedule(state: ContractState, delivery: Delivery) -> Schedule:
    """Recognized revenue per period so far, then the rest of the price planned ahead.

    Milestone lines plan each open milestone's share in its due period; other methods
    spread the rest evenly over the remaining periods of the line (cost-to-cost has no
    cost plan here, so even spreading is the neutral assumption).
    """
    rows: list[ScheduledAmount] = []
    for line_id, terms in state.terms.items():
        actual: dict[str, Money] = {}
        for e in state.revenue_entries:
            if e.contract_line_id == line_id:
                actual[e.period] = actual[e.period] + e.amount if e.period in actual else e.amount
        rows += [
            ScheduledAmount(contract_line_id=line_id, period=p, amount=a, actual=True)
            for p, a in sorted(actual.items())
        ]
        price = (
            terms.line.amount
            if terms.line.billing_model is BillingModel.TIME_AND_MATERIALS
            else state.transaction_price(line_id)
        )
        rest = price - state.recognized(line_id)
        last_actual = max(actual) if actual else ""
        periods = [p for p in _line_periods(state, line_id) if p > last_actual]
        if terms.line.revenue_method is RevenueMethod.MILESTONE:
            open_ms = [m for m in delivery.milestones if m.contract_line_id == line_id and m.completed_on is None]
            if open_ms and rest.is_positive():
                fallback = periods[-1] if periods else last_actual
                targets = [period_of(m.due_date) if m.due_date else fallback for m in open_ms]
                weights = [m.weight for m in open_ms]
                rows += _spread(line_id, rest, targets, weights if any(weights) else None)
                continue
        if not periods and not rest.is_zero():
            periods = [last_actual] if last_actual else _line_periods(state, line_id)[-1:]
        rows += _spread(line_id, rest, periods)
    return Schedule(lineage=state.lineage, kind="revenue", currency=state.currency, rows=rows)


def billing_schedule(state: ContractState, delivery: Delivery) -> Schedule:
    """Fee billing per period: billed so far, then milestones and retainer periods ahead.

    T&M lines are billed as worked and have no fee schedule.
    """
    events = {e.billing_event_id: e for e in state.billing_events}
    rows: list[ScheduledAmount] = []
    for line_id, terms in state.terms.items():
        model = terms.line.billing_model
        if model is BillingModel.TIME_AND_MATERIALS:
            continue
        kind = SourceKind.RETAINER if model is BillingModel.RETAINER else SourceKind.MILESTONE
        actual: dict[str, Money] = {}
        for inv in state.invoices:
            for il in inv.lines:
                if il.contract_line_id == line_id and il.kind is kind:
                    p = events[il.billing_event_id].period
                    actual[p] = actual[p] + il.net if p in actual else il.net
        rows += [
            ScheduledAmount(contract_line_id=line_id, period=p, amount=a, actual=True)
            for p, a in sorted(actual.items())
        ]
        rest = terms.line.amount - state.ledger_amount(line_id, kind)
        if not rest.is_positive():
            continue
        billed = state.billed_quantities()
        if model is BillingModel.RETAINER:
            periods = [p for p in _line_periods(state, line_id) if billed.get(retainer_source_id(line_id, p), 0) < 1]
            rows += _spread(line_id, rest, periods or _line_periods(state, line_id)[-1:])
            continue
        open_ms = [
            m for m in delivery.milestones if m.contract_line_id == line_id and billed.get(m.milestone_id, 0) < 1
        ]
        periods = _line_periods(state, line_id)
        fallback = periods[-1] if periods else max(actual, default="")
        if not open_ms:
            rows += _spread(line_id, rest, [fallback]) if fallback else []
            continue
        weights = [m.weight for m in open_ms]
        rows += _spread(
            line_id,
            rest,
            [period_of(m.due_date) if m.due_date else fallback for m in open_ms],
            weights if any(weights) else None,
        )
    return Schedule(lineage=state.lineage, kind="billing", currency=state.currency, rows=rows)


def milestone_amounts(state: ContractState, milestones: Sequence[Milestone]) -> dict[str, Money]:
    """What each milestone of the fee lines is worth under the current terms (for the PSA).

    A billed milestone is worth what it billed; the open ones share the price not yet billed
    by weight, as billing will split it (largest remainder), so a line's milestones add up
    to its price after an amendment too. Every milestone billed and the price raised: the
    rest is billed as an adjustment, shown on the line's last milestone.
    """
    out: dict[str, Money] = {}
    for line_id, terms in state.terms.items():
        if terms.line.billing_model not in (BillingModel.FIXED_FEE, BillingModel.MILESTONE):
            continue
        mine = sorted(
            (m for m in milestones if m.contract_line_id == line_id),
            key=lambda m: (m.due_date or date.max, m.milestone_id),
        )
        if not mine:
            continue
        billed = {
            m.milestone_id: sum_money(
                (
                    r.amount
                    for r in state.ledger
                    if r.source_kind is SourceKind.MILESTONE and r.source_id == m.milestone_id
                ),
                state.currency,
            )
            for m in mine
        }
        open_ = [m for m in mine if state.billed_quantity(m.milestone_id) < 1]  # as billing counts it
        for m in mine:
            out[m.milestone_id] = billed[m.milestone_id].rounded()
        rest = terms.line.amount - state.ledger_amount(line_id, SourceKind.MILESTONE)
        if not open_:
            out[mine[-1].milestone_id] = out[mine[-1].milestone_id] + rest.rounded()
            continue
        weights = [m.weight for m in open_] if any(m.weight for m in open_) else [Decimal(1)] * len(open_)
        for m, share in zip(open_, allocate(rest.rounded(), weights), strict=True):
            out[m.milestone_id] = share
    return out
