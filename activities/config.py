"""Configuration the workflows must read deterministically: served by local activities,
so a changed setting reaches a workflow as a recorded result, never as a hidden input."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.config import DealRulesInput, FinanceConfig, FinanceConfigInput
from domain.approvals import ApprovalPolicy
from domain.deal import DealRules
from domain.fx import FxRateTable
from domain.journals import ChartOfAccounts
from domain.model import LegalEntity
from domain.reference_data import default_fx_rates, default_legal_entities, default_tax_rules
from domain.tax import TaxRules


class ConfigActivities:
    def __init__(
        self,
        rules: DealRules,
        entities: dict[str, LegalEntity] | None = None,
        approvals: ApprovalPolicy | None = None,
        tax_rules: TaxRules | None = None,
        fx: FxRateTable | None = None,
        reporting_currency: str = "USD",
        chart_of_accounts: ChartOfAccounts | None = None,
    ) -> None:
        self._rules = rules
        self._entities = entities or default_legal_entities()
        self._approvals = approvals or ApprovalPolicy()
        self._tax = tax_rules or default_tax_rules()
        self._fx = fx or default_fx_rates()
        self._reporting_currency = reporting_currency
        self._coa = chart_of_accounts or ChartOfAccounts()

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
            chart_of_accounts=self._coa,
        )
