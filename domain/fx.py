"""Foreign exchange with dated rates.

Every conversion records the rate and the rate's date on its result, so an auditor can
redo the arithmetic and a re-run months later uses the same rate, not today's.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.money import CurrencyCode, Money


class MissingRateError(LookupError):
    """No rate on or before the date for the pair: a person must load one, d2r never guesses."""


class FxRate(BaseModel):
    """1 unit of `base` buys `rate` units of `quote`, from `as_of` until the next rate."""

    base: CurrencyCode
    quote: CurrencyCode
    rate: Decimal = Field(gt=0)
    as_of: date
    source: str = "manual"
    record_id: str | None = None  # the source system's id of the rate record, when it has one


class FxRatePage(BaseModel):
    """One page of a system's dated rate records; `cursor` resumes after it (None: the last)."""

    rates: list[FxRate] = Field(default_factory=list)
    cursor: str | None = None
    read: int = 0  # records read, including ones that could not be used (unknown currency)


class Converted(BaseModel):
    """A conversion and its evidence: what was converted, at which rate, of which date."""

    original: Money
    converted: Money
    rate: Decimal
    rate_date: date
    converted_on: date
    via: str | None = None  # the pivot currency when no direct rate existed

    def rounded(self) -> Money:
        return self.converted.rounded()


class FxRateTable(BaseModel):
    rates: list[FxRate] = Field(default_factory=list)
    # Cross rates go through one pivot, as treasury publishes them (e.g. ECB against EUR).
    pivot: CurrencyCode | None = None

    def _direct(self, base: str, quote: str, on: date) -> tuple[Decimal, date] | None:
        best: FxRate | None = None
        inverse = False
        for r in self.rates:
            if r.as_of > on:
                continue
            if r.base == base and r.quote == quote:
                candidate, inv = r, False
            elif r.base == quote and r.quote == base:
                candidate, inv = r, True
            else:
                continue
            # The latest rate wins; on the same date a direct quote beats an inverted one.
            if best is None or (candidate.as_of, not inv) > (best.as_of, not inverse):
                best, inverse = candidate, inv
        if best is None:
            return None
        return (Decimal(1) / best.rate if inverse else best.rate), best.as_of

    def lookup(self, base: str, quote: str, on: date) -> tuple[Decimal, date, str | None]:
        """The rate in force on `on`: (rate, rate date, pivot used or None)."""
        if base == quote:
            return Decimal(1), on, None
        direct = self._direct(base, quote, on)
        if direct is not None:
            return direct[0], direct[1], None
        if self.pivot and self.pivot not in (base, quote):
            first = self._direct(base, self.pivot, on)
            second = self._direct(self.pivot, quote, on)
            if first is not None and second is not None:
                # The older of the two legs is the date the cross rate is good for.
                return first[0] * second[0], min(first[1], second[1]), self.pivot
        raise MissingRateError(f"no {base}/{quote} rate on or before {on.isoformat()}")

    def convert(self, money: Money, to: str, on: date) -> Converted:
        """Convert at full precision; round only when the figure lands on a document."""
        rate, rate_date, via = self.lookup(money.currency, to, on)
        return Converted(
            original=money,
            converted=Money(amount=money.amount * rate, currency=to),
            rate=rate,
            rate_date=rate_date,
            converted_on=on,
            via=via,
        )


def convert(money: Money, to: str, on: date, table: FxRateTable) -> Converted:
    return table.convert(money, to, on)
