"""Inputs and results of the configuration (local) activities."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.approvals import ApprovalPolicy
from domain.fx import FxRateTable
from domain.journals import ChartOfAccounts
from domain.model import LegalEntity
from domain.reference_data import default_fx_rates, default_tax_rules
from domain.tax import TaxRules


class DealRulesInput(BaseModel):
    opportunity_id: str


class FinanceConfigInput(BaseModel):
    legal_entity: str


class FinanceConfig(BaseModel):
    legal_entity: LegalEntity
    tax_rules: TaxRules = Field(default_factory=default_tax_rules)
    fx: FxRateTable = Field(default_factory=default_fx_rates)
    reporting_currency: str = "USD"
    approvals: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    chart_of_accounts: ChartOfAccounts = Field(default_factory=ChartOfAccounts)  # the journals' accounts
