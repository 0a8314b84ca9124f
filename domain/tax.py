"""Indirect tax (VAT / GST / sales tax) per jurisdiction and customer.

The determination says *which* treatment applies and why (a reverse-charge invoice must
say so in words); the computation is per invoice line, rounded by the jurisdiction's rule.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.money import Money

EU_MEMBERS: frozenset[str] = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    }
)

REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
EXPORT_NOTE = "Outside the scope of VAT: services supplied to a customer abroad"
EXEMPT_NOTE = "Exempt supply"


class TaxTreatment(StrEnum):
    STANDARD = "standard"
    REVERSE_CHARGE = "reverse_charge"
    EXEMPT = "exempt"
    OUT_OF_SCOPE = "out_of_scope"


class TaxRate(BaseModel):
    jurisdiction: str  # ISO country code
    rate: Decimal = Field(ge=0)  # 0.20 for 20 %
    effective_from: date
    name: str = "VAT"
    rounding: str = ROUND_HALF_UP  # a few jurisdictions round otherwise; they say so here


class TaxParty(BaseModel):
    """What tax needs to know of a buyer: where it is and whether it is a business."""

    customer_id: str
    country: str
    tax_id: str | None = None  # a VAT number makes the customer a business (B2B)
    exempt: bool = False  # e.g. a charity or a government body with an exemption certificate


class TaxRules(BaseModel):
    rates: list[TaxRate] = Field(default_factory=list)
    eu_members: frozenset[str] = EU_MEMBERS
    # Service codes configured as exempt per jurisdiction (e.g. some professional services).
    exempt_services: dict[str, list[str]] = Field(default_factory=dict)

    def rate_for(self, jurisdiction: str, on: date) -> TaxRate:
        candidates = [r for r in self.rates if r.jurisdiction == jurisdiction and r.effective_from <= on]
        if not candidates:
            raise LookupError(f"no tax rate for {jurisdiction} on {on.isoformat()}")
        return max(candidates, key=lambda r: r.effective_from)


class TaxDetermination(BaseModel):
    treatment: TaxTreatment
    jurisdiction: str
    rate: Decimal
    rounding: str = ROUND_HALF_UP
    note: str | None = None  # the legal wording the invoice must carry


def determine_tax(
    rules: TaxRules,
    seller_country: str,
    buyer: TaxParty,
    on: date,
    service_code: str | None = None,
) -> TaxDetermination:
    """Place of supply for B2B services is the buyer's country; B2C stays with the seller."""
    if buyer.exempt:
        return TaxDetermination(
            treatment=TaxTreatment.EXEMPT, jurisdiction=seller_country, rate=Decimal(0), note=EXEMPT_NOTE
        )
    if service_code and service_code in rules.exempt_services.get(seller_country, []):
        return TaxDetermination(
            treatment=TaxTreatment.EXEMPT, jurisdiction=seller_country, rate=Decimal(0), note=EXEMPT_NOTE
        )
    domestic = buyer.country == seller_country
    if not domestic and buyer.tax_id:
        both_eu = seller_country in rules.eu_members and buyer.country in rules.eu_members
        if both_eu:
            return TaxDetermination(
                treatment=TaxTreatment.REVERSE_CHARGE,
                jurisdiction=buyer.country,
                rate=Decimal(0),
                note=REVERSE_CHARGE_NOTE,
            )
        return TaxDetermination(
            treatment=TaxTreatment.OUT_OF_SCOPE, jurisdiction=buyer.country, rate=Decimal(0), note=EXPORT_NOTE
        )
    rate = rules.rate_for(seller_country, on)
    return TaxDetermination(
        treatment=TaxTreatment.STANDARD, jurisdiction=seller_country, rate=rate.rate, rounding=rate.rounding
    )


def line_tax(net: Money, determination: TaxDetermination) -> Money:
    """Tax of one invoice line, rounded on the line (the line is the document unit here)."""
    return net.times(determination.rate).rounded(determination.rounding)
