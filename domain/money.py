"""Money: an exact Decimal amount with an ISO 4217 currency.

Amounts are kept at full precision while they are computed; they are rounded to the
currency's minor unit only where a document (invoice, journal, sales order) is issued.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ISO 4217 minor units for the currencies d2r deals in; unknown codes are refused
# rather than guessed, because a wrong exponent silently scales every amount.
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "INR": 2, "SGD": 2, "HKD": 2, "CNY": 2, "BRL": 2, "MXN": 2,
    "ZAR": 2, "NZD": 2, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "KWD": 3, "BHD": 3,
    "OMR": 3, "JOD": 3, "TND": 3,
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

    def rounded(self) -> Money:
        """Round half-up to the currency's minor unit: only where a document is issued."""
        return Money(
            amount=self.amount.quantize(quantum(self.currency), rounding=ROUND_HALF_UP),
            currency=self.currency,
        )

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
