"""The demo firm's reference data (legal entities, tax rates, FX rates): the defaults when
no configuration names others."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.fx import FxRate, FxRateTable
from domain.model import LegalEntity
from domain.tax import TaxRate, TaxRules


def default_legal_entities() -> dict[str, LegalEntity]:
    return {
        "US01": LegalEntity(
            code="US01",
            name="Northwind Consulting Inc.",
            functional_currency="USD",
            tax_jurisdiction="US",
            erp_instance="default",
        ),
        "UK01": LegalEntity(
            code="UK01",
            name="Northwind Consulting Ltd",
            functional_currency="GBP",
            tax_jurisdiction="GB",
            erp_instance="default",
        ),
        "DE01": LegalEntity(
            code="DE01",
            name="Northwind Consulting GmbH",
            functional_currency="EUR",
            tax_jurisdiction="DE",
            erp_instance="default",
        ),
        "JP01": LegalEntity(
            code="JP01",
            name="Northwind Consulting KK",
            functional_currency="JPY",
            tax_jurisdiction="JP",
            erp_instance="default",
        ),
    }


def default_tax_rules() -> TaxRules:
    since = date(2020, 1, 1)
    return TaxRules(
        rates=[
            TaxRate(jurisdiction="GB", rate=Decimal("0.20"), effective_from=since),
            TaxRate(jurisdiction="DE", rate=Decimal("0.19"), effective_from=since),
            TaxRate(jurisdiction="JP", rate=Decimal("0.10"), effective_from=since, name="Consumption tax"),
            # US services: no sales tax in the demo's home state.
            TaxRate(jurisdiction="US", rate=Decimal("0"), effective_from=since, name="Sales tax"),
        ]
    )


def default_fx_rates() -> FxRateTable:
    as_of = date(2026, 1, 1)
    return FxRateTable(
        pivot="USD",
        rates=[
            FxRate(base="EUR", quote="USD", rate=Decimal("1.08"), as_of=as_of),
            FxRate(base="GBP", quote="USD", rate=Decimal("1.27"), as_of=as_of),
            FxRate(base="USD", quote="JPY", rate=Decimal("150"), as_of=as_of),
        ],
    )
