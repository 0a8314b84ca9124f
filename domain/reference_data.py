"""A firm's reference data — legal entities, tax rates, FX rates, chart of accounts — read
from one configuration file (`load_reference_data_file`, named by the settings'
`reference_data_file`), so a firm configures d2r without editing code; the demo firm's
values are the defaults when no file is given."""

from __future__ import annotations

import json
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from domain.fx import FxRate, FxRateTable
from domain.journals import ChartOfAccounts
from domain.model import LegalEntity
from domain.tax import TaxRate, TaxRules


class ReferenceDataError(ValueError):
    """The reference data file cannot be read or does not hold valid reference data."""


class ReferenceData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_entities: dict[str, LegalEntity]
    tax_rates: list[TaxRate] = Field(default_factory=list)
    fx_rates: list[FxRate] = Field(default_factory=list)
    fx_pivot: str | None = None
    chart_of_accounts: ChartOfAccounts = Field(default_factory=ChartOfAccounts)

    def tax_rules(self) -> TaxRules:
        return TaxRules(rates=self.tax_rates)

    def fx(self) -> FxRateTable:
        return FxRateTable(rates=self.fx_rates, pivot=self.fx_pivot)

    def entity_currencies(self) -> dict[str, str]:
        """Legal entity code -> functional currency (what deal validation and posting need)."""
        return {code: e.functional_currency for code, e in self.legal_entities.items()}


def load_reference_data_file(path: Path) -> ReferenceData:
    """TOML (`.toml`) or JSON; money rates as strings or numbers read exactly (never float)."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = (
            tomllib.loads(text, parse_float=Decimal)
            if path.suffix == ".toml"
            else json.loads(text, parse_float=Decimal)
        )
        data = ReferenceData.model_validate(raw)
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"reference data file {path}: {exc}") from exc
    for code, entity in data.legal_entities.items():
        if entity.code != code:
            raise ReferenceDataError(f"reference data file {path}: legal entity {code!r} is coded {entity.code!r}")
    return data


def default_reference_data() -> ReferenceData:
    fx = default_fx_rates()
    return ReferenceData(
        legal_entities=default_legal_entities(),
        tax_rates=default_tax_rules().rates,
        fx_rates=fx.rates,
        fx_pivot=fx.pivot,
    )


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
