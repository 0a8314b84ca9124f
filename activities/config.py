"""Configuration the workflows must read deterministically: served by local activities,
so a changed setting reaches a workflow as a recorded result, never as a hidden input."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.approvals import ApprovalPolicy
from domain.deal import DealRules
from domain.fx import FxRate, FxRateTable
from domain.model import LegalEntity
from domain.tax import TaxRate, TaxRules


class DealRulesInput(BaseModel):
    opportunity_id: str


class FinanceConfigInput(BaseModel):
    legal_entity: str


def _default_entities() -> dict[str, LegalEntity]:
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


def _default_tax() -> TaxRules:
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


def _default_fx() -> FxRateTable:
    as_of = date(2026, 1, 1)
    return FxRateTable(
        pivot="USD",
        rates=[
            FxRate(base="EUR", quote="USD", rate=Decimal("1.08"), as_of=as_of),
            FxRate(base="GBP", quote="USD", rate=Decimal("1.27"), as_of=as_of),
            FxRate(base="USD", quote="JPY", rate=Decimal("150"), as_of=as_of),
        ],
    )


class FinanceConfig(BaseModel):
    legal_entity: LegalEntity
    tax_rules: TaxRules = Field(default_factory=_default_tax)
    fx: FxRateTable = Field(default_factory=_default_fx)
    reporting_currency: str = "USD"
    approvals: ApprovalPolicy = Field(default_factory=ApprovalPolicy)


class ConfigActivities:
    def __init__(
        self,
        rules: DealRules,
        entities: dict[str, LegalEntity] | None = None,
        approvals: ApprovalPolicy | None = None,
        tax_rules: TaxRules | None = None,
        fx: FxRateTable | None = None,
        reporting_currency: str = "USD",
    ) -> None:
        self._rules = rules
        self._entities = entities or _default_entities()
        self._approvals = approvals or ApprovalPolicy()
        self._tax = tax_rules or _default_tax()
        self._fx = fx or _default_fx()
        self._reporting_currency = reporting_currency

    @activity.defn(name="config.deal_rules")
    async def deal_rules(self, data: DealRulesInput) -> DealRules:
        return self._rules

    @activity.defn(name="config.finance")
    async def finance(self, data: FinanceConfigInput) -> FinanceConfig:
        entity = self._entities.get(data.legal_entity)
        if entity is None:
            raise ApplicationError(
                f"no legal entity {data.legal_entity} is configured", type="ConfigurationError", non_retryable=True
            )
        return FinanceConfig(
            legal_entity=entity,
            tax_rules=self._tax,
            fx=self._fx,
            reporting_currency=self._reporting_currency,
            approvals=self._approvals,
        )
