"""Money: an exact Decimal amount with an ISO 4217 currency.

Amounts are kept at full precision while they are computed; they are rounded to the
currency's minor unit only where a document (invoice, journal, sales order) is issued.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import floor
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ISO 4217 minor units for the currencies d2r deals in; unknown codes are refused
# rather than guessed, because a wrong exponent silently scales every amount.
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "INR": 2,
    "SGD": 2,
    "HKD": 2,
    "CNY": 2,
    "BRL": 2,
    "MXN": 2,
    "ZAR": 2,
    "NZD": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}

CurrencyCode = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]


class UnknownCurrencyError(ValueError):
    """A currency code d2r does not know the minor unit of."""


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError as exc:
        raise UnknownCurrencyError(f"unknown currency {currency!r}") from exc


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


class Money(BaseModel):
    """An amount in one currency. Arithmetic refuses to mix currencies."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: CurrencyCode

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("money amounts must not be floats; pass a str or Decimal")
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        minor_unit(value)
        return value

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(amount=Decimal(amount), currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def times(self, factor: Decimal | int) -> Money:
        return Money(amount=self.amount * Decimal(factor), currency=self.currency)

    def rounded(self, rounding: str = ROUND_HALF_UP) -> Money:
        """Round to the currency's minor unit (half-up unless a jurisdiction says otherwise).

        Only where a document is issued: rounding intermediate figures is how cents get lost.
        """
        return Money(
            amount=self.amount.quantize(quantum(self.currency), rounding=rounding),
            currency=self.currency,
        )

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_positive(self) -> bool:
        return self.amount > 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def is_whole(self) -> bool:
        """True when the amount is a whole number of minor units (a document amount)."""
        return self.amount % quantum(self.currency) == 0

    def positive_part(self) -> Money:
        """max(self, 0): deferred and unbilled balances are one-sided by definition."""
        return self if self.amount > 0 else Money.zero(self.currency)

    def __abs__(self) -> Money:
        return Money(amount=abs(self.amount), currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def allocate(self, weights: Sequence[Decimal | int]) -> list[Money]:
        return allocate(self, weights)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def sum_money(items: Iterable[Money], currency: str) -> Money:
    """Sum in one currency; an empty sum is a zero of that currency, not an error."""
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total


def allocate(total: Money, weights: Sequence[Decimal | int]) -> list[Money]:
    """Split a document amount over `weights` by largest remainder.

    The shares are whole minor units and sum to `total` exactly. Ties go to the earlier
    weight so the split is deterministic (a replayed workflow must split the same way).
    Exact rational arithmetic is used because a Decimal division could itself round.
    """
    if not weights:
        raise ValueError("cannot allocate over no weights")
    if not total.is_whole():
        raise ValueError(f"{total} is not a whole number of minor units; round it first")
    exact = [Fraction(Decimal(w)) for w in weights]
    if any(w < 0 for w in exact):
        raise ValueError("allocation weights must not be negative")
    weight_sum = sum(exact, Fraction(0))
    q = quantum(total.currency)
    units = int(total.amount / q)
    if weight_sum == 0:
        if units == 0:
            return [Money.zero(total.currency) for _ in weights]
        raise ValueError("cannot allocate a non-zero amount over zero weights")
    sign = -1 if units < 0 else 1
    units = abs(units)
    raw = [units * w / weight_sum for w in exact]
    shares = [floor(r) for r in raw]
    left = units - sum(shares)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return [Money(amount=Decimal(sign * share) * q, currency=total.currency) for share in shares]
