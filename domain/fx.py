"""Foreign exchange with dated rates.

Every conversion records the rate and the rate's date on its result, so an auditor can
redo the arithmetic and a re-run months later uses the same rate, not today's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, Field, PrivateAttr

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


class FxLookup(BaseModel):
    """One conversion a computation asks for: `base` into `quote` on `on`."""

    base: CurrencyCode
    quote: CurrencyCode
    on: date


class ChosenRate(FxLookup):
    """The rate the rates' owner (the reporting hub) chose for one conversion, with its evidence."""

    rate: Decimal = Field(gt=0)
    rate_date: date
    source: str
    via: str | None = None  # the pivot currency of a cross rate


# A cross rate carries 10 decimals, as the hub stores it (hub_fx_rate_chosen, migration 0018).
CROSS_RATE_PLACES = Decimal("1e-10")


class FxRateTable(BaseModel):
    rates: list[FxRate] = Field(default_factory=list)
    # Cross rates go through one pivot, as treasury publishes them (e.g. ECB against EUR).
    pivot: CurrencyCode | None = None
    # Rates already chosen by the hub for these exact conversions: they win over `rates`,
    # so a figure converted here is converted at the hub's rate for its day.
    chosen: list[ChosenRate] = Field(default_factory=list)
    # (the list it indexes, the index): a copy with other `chosen` rebuilds it
    _index: tuple[list[ChosenRate], dict[tuple[str, str, date], ChosenRate]] | None = PrivateAttr(default=None)

    def _latest(self, base: str, quote: str, on: date) -> FxRate | None:
        found = [r for r in self.rates if r.base == base and r.quote == quote and r.as_of <= on]
        return max(found, key=lambda r: r.as_of) if found else None

    def _direct(self, base: str, quote: str, on: date) -> tuple[Decimal, date] | None:
        """The hub's rule (migration 0018): the latest direct rate on or before the day; only
        when the pair has none, the latest inverse rate."""
        direct = self._latest(base, quote, on)
        if direct is not None:
            return direct.rate, direct.as_of
        inverse = self._latest(quote, base, on)
        if inverse is not None:
            return Decimal(1) / inverse.rate, inverse.as_of
        return None

    def lookup(self, base: str, quote: str, on: date) -> tuple[Decimal, date, str | None]:
        """The rate in force on `on`: (rate, rate date, pivot used or None)."""
        if base == quote:
            return Decimal(1), on, None
        if self.chosen:
            if self._index is None or self._index[0] is not self.chosen:
                self._index = (self.chosen, {(c.base, c.quote, c.on): c for c in self.chosen})
            hit = self._index[1].get((base, quote, on))
            if hit is not None:
                return hit.rate, hit.rate_date, hit.via
        direct = self._direct(base, quote, on)
        if direct is not None:
            return direct[0], direct[1], None
        if self.pivot and self.pivot not in (base, quote):
            first = self._direct(base, self.pivot, on)
            second = self._direct(self.pivot, quote, on)
            if first is not None and second is not None:
                # The older of the two legs is the date the cross rate is good for.
                cross = (first[0] * second[0]).quantize(CROSS_RATE_PLACES, rounding=ROUND_HALF_UP)
                return cross, min(first[1], second[1]), self.pivot
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


class _AskedFor(FxRateTable):
    """Answers like the table it copies (1 where that has no rate) and notes every conversion."""

    _asked: set[tuple[str, str, date]] = PrivateAttr(default_factory=set)

    def lookup(self, base: str, quote: str, on: date) -> tuple[Decimal, date, str | None]:
        if base != quote:
            self._asked.add((base, quote, on))
        try:
            return super().lookup(base, quote, on)
        except MissingRateError:
            return Decimal(1), on, None


def conversions_asked(compute: Callable[[FxRateTable], object], table: FxRateTable) -> list[FxLookup]:
    """Every conversion `compute` makes when handed `table`, in a stable order: a dry run of a
    pure computation, so its rates can be fetched before it runs for real."""
    probe = _AskedFor(rates=table.rates, pivot=table.pivot, chosen=table.chosen)
    compute(probe)
    return [FxLookup(base=b, quote=q, on=d) for b, q, d in sorted(probe._asked)]
