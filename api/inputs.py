"""Request bodies as the API accepts them: known fields only (`extra="forbid"`), bounded
strings, and money that is a positive, finite amount in whole minor units of a known
currency. Each converts to the domain model the workflows take; the domain models stay
lenient (they also carry what d2r writes itself, e.g. an amendment's inverse)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from domain.amendments import Amendment, AmendmentTreatment
from domain.credit_memos import CreditMemoRequest
from domain.deal import BillingModel, RevenueMethod
from domain.money import CurrencyCode, Money, minor_unit

# Ids a caller chooses (a credit memo's, an amendment's): plain, so they read well inside d2r's ids.
BusinessId = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
# Ids a caller copies from d2r or the CRM (invoice lines, contract lines, sources): printable, no spaces.
RecordId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[!-~]+$")]
# Free text a person writes: no control characters (a NUL cannot even be stored in the hub).
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Reason = Annotated[str, Field(min_length=3, max_length=500, pattern=TEXT)]
Comment = Annotated[str, Field(max_length=2000, pattern=TEXT)]
# A filter value in a query string: short, printable.
Filter = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _iso_only(value: object) -> object:
    """Dates as ISO 8601 text: pydantic alone would also read `0` or `0.5` as Unix seconds."""
    if isinstance(value, str | int | float) and not re.match(r"^\d{4}-\d{2}-\d{2}", str(value)):
        raise ValueError("use an ISO 8601 date, e.g. 2026-11-30 (or 2026-11-30T00:00:00Z)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_only)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
# Larger than any document d2r issues, small enough that no quantize ever overflows.
MAX_AMOUNT = Decimal(10) ** 13


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyIn(Strict):
    """A document amount: positive, finite, at most the currency's minor unit of precision."""

    amount: Decimal = Field(allow_inf_nan=False, gt=0, lt=MAX_AMOUNT, examples=["1250.00"])
    currency: CurrencyCode

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('send amounts as decimal strings (e.g. "1250.00"), never floats')
        return value

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        minor_unit(value)  # unknown codes are refused rather than guessed
        return value

    @model_validator(mode="after")
    def _whole_minor_units(self) -> MoneyIn:
        places = minor_unit(self.currency)
        _, digits, exponent = self.amount.as_tuple()
        assert isinstance(exponent, int)  # finite: NaN and infinities were refused above
        while exponent < 0 and digits and digits[-1] == 0:  # 10.50 and 10.5000 are the same amount
            digits, exponent = digits[:-1], exponent + 1
        if -exponent > places:
            raise ValueError(f"{self.amount} has more decimals than {self.currency} has minor units ({places})")
        return self

    def money(self) -> Money:
        return Money(amount=self.amount, currency=self.currency)


# ---- credit memos ------------------------------------------------------------------------------
class CreditLineIn(Strict):
    invoice_line_id: RecordId
    amount: MoneyIn | None = Field(default=None, description="omit: whatever of the line is not yet credited")
    price_concession: bool = True
    rebill_source_ids: list[RecordId] | None = Field(default=None, max_length=500)


class CreditMemoIn(Strict):
    credit_memo_id: BusinessId = Field(description="your business id: a retry with the same id credits once")
    invoice_id: RecordId
    memo_date: IsoDate
    reason: Reason
    lines: list[CreditLineIn] = Field(min_length=1, max_length=100)

    def domain(self) -> CreditMemoRequest:
        return CreditMemoRequest.model_validate(self.model_dump())


class CreditMemoBody(Strict):
    credit_memo: CreditMemoIn


# ---- amendments -------------------------------------------------------------------------------
class ContractLineIn(Strict):
    line_id: RecordId
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]
    billing_model: BillingModel
    revenue_method: RevenueMethod
    amount: MoneyIn
    role: str | None = Field(default=None, max_length=80)
    hours: Decimal | None = Field(default=None, allow_inf_nan=False, gt=0, lt=10**7)


class NewLineIn(Strict):
    line: ContractLineIn
    estimate_at_completion: MoneyIn | None = None
    not_to_exceed: MoneyIn | None = None
    expense_markup: Decimal = Field(default=Decimal(0), allow_inf_nan=False, ge=0, le=10)
    service_start: IsoDate | None = None
    service_end: IsoDate | None = None
    service_code: str | None = Field(default=None, max_length=40)


class LineChangeIn(Strict):
    """One line's change; a field left out keeps its value."""

    contract_line_id: RecordId
    price: MoneyIn | None = None
    estimate_at_completion: MoneyIn | None = None
    not_to_exceed: MoneyIn | None = None
    service_end: IsoDate | None = None
    scope: str | None = Field(default=None, min_length=1, max_length=500, pattern=TEXT)
    add: NewLineIn | None = None
    remove: bool = False


class AmendmentIn(Strict):
    amendment_id: BusinessId
    effective_date: IsoDate
    treatment: AmendmentTreatment
    reason: Reason
    changes: list[LineChangeIn] = Field(min_length=1, max_length=100)

    def domain(self) -> Amendment:
        return Amendment.model_validate(self.model_dump())


class AmendmentBody(Strict):
    amendment: AmendmentIn


# ---- the small bodies --------------------------------------------------------------------------
class DecisionBody(Strict):
    decision: Literal["approve", "reject"]
    comment: Comment | None = None


class CancelBody(Strict):
    reason: Reason
