"""Bookings, append-only: the deal as booked, then each change order as its own movement.

A booking is what was sold when it was sold. The original lines are booked at the deal's
close date at the price agreed then; an amendment that changes a price (or adds or removes
a line) books the difference, positive or negative, at its effective date. Nothing already
booked is ever restated, so a month's bookings and its month-end backlog stay what they
were reported as when a later change arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel

from domain.amendments import AppliedAmendment
from domain.contract import LineTerms
from domain.deal import BillingModel, Engagement
from domain.money import Money


class BookingMovement(BaseModel):
    """One booking fact: the original line, or one change order's change to one line."""

    booking_id: str  # `<opportunity>:<line>`, or `<opportunity>:<line>:<amendment>`
    contract_line_id: str
    billing_model: BillingModel
    booking_date: date
    amount: Money
    amendment_id: str | None = None  # None for the deal as booked


def _price(terms: LineTerms | None, currency: str) -> Money:
    return terms.line.amount if terms is not None and terms.active else Money.zero(currency)


def booking_movements(engagement: Engagement, applied: Iterable[AppliedAmendment]) -> list[BookingMovement]:
    """The deal's bookings in order: `engagement` as booked (its lines at close), then the
    price change of every line each applied amendment moved, dated at its effective date.

    An amendment that changes no price (a new estimate, a later end date) books nothing.
    """
    out = [
        BookingMovement(
            booking_id=f"{engagement.opportunity_id}:{line.line_id}",
            contract_line_id=line.line_id,
            billing_model=line.billing_model,
            booking_date=engagement.close_date,
            amount=line.amount,
        )
        for line in engagement.lines
    ]
    for change in applied:
        amendment = change.amendment
        for line_id in sorted(set(change.before) | set(change.after)):
            old, new = change.before.get(line_id), change.after.get(line_id)
            delta = _price(new, engagement.currency) - _price(old, engagement.currency)
            terms = new or old
            if delta.is_zero() or terms is None:
                continue
            out.append(
                BookingMovement(
                    booking_id=f"{engagement.opportunity_id}:{line_id}:{amendment.amendment_id}",
                    contract_line_id=line_id,
                    billing_model=terms.line.billing_model,
                    booking_date=amendment.effective_date,
                    amount=delta,
                    amendment_id=amendment.amendment_id,
                )
            )
    return out
