"""The booked deal: what the CRM says was sold, and the strict rules it must pass.

`OpportunitySnapshot` is deliberately loose (every field optional) because it is what
the CRM *holds*; `validate_deal` turns it into a strict `Engagement` or into
field-level errors a person can fix in the CRM before anything is built downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.money import MINOR_UNITS, Money


class BillingModel(StrEnum):
    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    MILESTONE = "milestone"
    RETAINER = "retainer"


class RevenueMethod(StrEnum):
    AS_DELIVERED = "as_delivered"
    COST_TO_COST = "cost_to_cost"
    MILESTONE = "milestone"
    RATABLE = "ratable"


# The revenue method a billing model takes when the contract line does not say.
DEFAULT_REVENUE_METHOD: dict[BillingModel, RevenueMethod] = {
    BillingModel.TIME_AND_MATERIALS: RevenueMethod.AS_DELIVERED,
    BillingModel.FIXED_FEE: RevenueMethod.COST_TO_COST,
    BillingModel.MILESTONE: RevenueMethod.MILESTONE,
    BillingModel.RETAINER: RevenueMethod.RATABLE,
}

CLOSED_WON = "Closed Won"


class AccountNode(BaseModel):
    """One account of a customer hierarchy, as the CRM holds it."""

    account_id: str
    name: str | None = None
    parent_id: str | None = None
    country: str | None = None
    tax_id: str | None = None


class MilestonePlanSnapshot(BaseModel):
    """One milestone of a deal-specific schedule as the CRM holds it: a percent of the line
    or an amount, and a planned date."""

    name: str | None = None
    percent: Decimal | None = None
    amount: Decimal | None = None
    planned_date: date | None = None


class OpportunityLineSnapshot(BaseModel):
    line_id: str
    name: str | None = None
    product_code: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    total_price: Decimal | None = None
    billing_model: str | None = None
    revenue_method: str | None = None
    role: str | None = None
    hours: Decimal | None = None
    # Contract terms sold on the line (custom fields; see docs/domain.md, "Deal terms").
    estimate_at_completion: Decimal | None = None  # total expected cost of a cost-to-cost line
    not_to_exceed: Decimal | None = None  # a T&M line's cap
    milestone_schedule: list[MilestonePlanSnapshot] = Field(default_factory=list)


class OpportunitySnapshot(BaseModel):
    """An opportunity with its account hierarchy (self first, root last) and lines."""

    opportunity_id: str
    name: str | None = None
    stage: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    close_date: date | None = None
    legal_entity: str | None = None
    billing_terms: str | None = None
    delivery_region: str | None = None
    service_package: str | None = None
    contract_start: date | None = None
    contract_end: date | None = None
    project_id: str | None = None
    accounts: list[AccountNode] = Field(default_factory=list)
    lines: list[OpportunityLineSnapshot] = Field(default_factory=list)


class FieldError(BaseModel):
    """One reason a deal cannot be booked, named by the CRM field a person must fix."""

    field: str
    code: str
    message: str


class Customer(BaseModel):
    customer_id: str  # the CRM account id: the lineage key for the customer
    name: str
    country: str | None = None
    tax_id: str | None = None
    parent_id: str | None = None
    hierarchy: list[str] = Field(default_factory=list)  # account ids, self first, root last


class MilestonePlan(BaseModel):
    """A milestone of the deal's own schedule: its share of the line is weight / sum of
    weights (percents, or amounts that add up to the line's price)."""

    name: str
    weight: Decimal = Field(gt=0)
    planned_date: date | None = None


class ContractLine(BaseModel):
    line_id: str
    name: str
    billing_model: BillingModel
    revenue_method: RevenueMethod
    amount: Money
    role: str | None = None
    hours: Decimal | None = None
    # The rate negotiated on the deal for `role` (a T&M line's unit price per hour): it
    # beats every rate card (docs/domain.md, "Rate precedence").
    bill_rate: Money | None = None
    estimate_at_completion: Money | None = None  # cost-to-cost lines, from the deal
    not_to_exceed: Money | None = None  # T&M cap, from the deal
    milestones: list[MilestonePlan] = Field(default_factory=list)  # overrides the template's


class Engagement(BaseModel):
    """The booked deal after strict validation: the input to provisioning."""

    opportunity_id: str
    name: str
    customer: Customer
    legal_entity: str
    currency: str
    contract_value: Money
    close_date: date
    billing_terms: str
    service_package: str
    delivery_region: str | None = None
    contract_start: date | None = None
    contract_end: date | None = None
    lines: list[ContractLine]

    @property
    def billing_models(self) -> list[BillingModel]:
        return sorted({line.billing_model for line in self.lines})


class DealRules(BaseModel):
    """What a bookable deal must satisfy; configuration, not code."""

    legal_entities: dict[str, str]  # legal entity code -> functional currency
    service_packages: set[str] | None = None  # None: any package code is accepted
    amount_tolerance: Decimal = Decimal("0.01")


def _money(amount: Decimal | None, currency: str) -> Money | None:
    return Money(amount=amount, currency=currency) if amount is not None else None


def _check_line_terms(
    raw: OpportunityLineSnapshot,
    model: BillingModel,
    method: RevenueMethod,
    prefix: str,
    err: Callable[[str, str, str], None],
) -> None:
    """The contract terms sold on a line must fit its billing model and revenue method."""
    if raw.estimate_at_completion is not None:
        if method is not RevenueMethod.COST_TO_COST:
            err(f"{prefix}.D2R_Estimate_At_Completion__c", "invalid", "only a cost-to-cost line has an estimate")
        elif raw.estimate_at_completion <= 0:
            err(f"{prefix}.D2R_Estimate_At_Completion__c", "invalid", "the estimate at completion must be positive")
    if raw.not_to_exceed is not None:
        if model is not BillingModel.TIME_AND_MATERIALS:
            err(f"{prefix}.D2R_Not_To_Exceed__c", "invalid", "only a T&M line has a not-to-exceed cap")
        elif raw.not_to_exceed <= 0:
            err(f"{prefix}.D2R_Not_To_Exceed__c", "invalid", "the not-to-exceed cap must be positive")
    plan = raw.milestone_schedule
    if not plan:
        return
    field = f"{prefix}.D2R_Milestone_Schedule__c"
    if method is not RevenueMethod.MILESTONE and model is not BillingModel.MILESTONE:
        err(field, "invalid", "only a milestone line has a milestone schedule")
        return
    percents = [m.percent for m in plan]
    amounts = [m.amount for m in plan]
    if all(p is not None and p > 0 for p in percents) and all(a is None for a in amounts):
        if sum(p for p in percents if p is not None) != 100:
            err(field, "invalid", "the milestone percents must add up to 100")
    elif all(a is not None and a > 0 for a in amounts) and all(p is None for p in percents):
        if sum(a for a in amounts if a is not None) != (raw.total_price or 0):
            err(field, "invalid", f"the milestone amounts must add up to the line's {raw.total_price}")
    else:
        err(field, "invalid", "each milestone needs a positive percent, or each a positive amount (not both)")


def validate_deal(opp: OpportunitySnapshot, rules: DealRules) -> Engagement | list[FieldError]:
    """Strict validation. Returns every problem at once so one CRM fix can address all."""
    errors: list[FieldError] = []

    def err(field: str, code: str, message: str) -> None:
        errors.append(FieldError(field=field, code=code, message=message))

    if opp.stage != CLOSED_WON:
        err("StageName", "wrong_stage", f"stage is {opp.stage!r}; only {CLOSED_WON!r} deals are booked")
    if not opp.name:
        err("Name", "required", "the opportunity has no name")
    if not opp.accounts or not opp.accounts[0].name:
        err("AccountId", "required", "the opportunity has no account")
    if opp.close_date is None:
        err("CloseDate", "required", "the close date is missing")
    if not opp.billing_terms:
        err("D2R_Billing_Terms__c", "required", "billing terms are missing (e.g. 'Net 30')")
    if not opp.service_package:
        err("D2R_Service_Package__c", "required", "the service package is missing")
    elif rules.service_packages is not None and opp.service_package not in rules.service_packages:
        err("D2R_Service_Package__c", "unknown", f"unknown service package {opp.service_package!r}")

    if not opp.legal_entity:
        err("D2R_Legal_Entity__c", "required", "the contracting legal entity is missing")
    elif opp.legal_entity not in rules.legal_entities:
        err("D2R_Legal_Entity__c", "unknown", f"unknown legal entity {opp.legal_entity!r}")

    currency_ok = opp.currency is not None and opp.currency in MINOR_UNITS
    if not currency_ok:
        err("CurrencyIsoCode", "invalid", f"currency {opp.currency!r} is missing or unknown")

    if opp.contract_start and opp.contract_end and opp.contract_end < opp.contract_start:
        err("D2R_Contract_End__c", "invalid", "the contract ends before it starts")

    lines: list[ContractLine] = []
    if not opp.lines:
        err("OpportunityLineItems", "required", "the opportunity has no line items")
    for index, raw in enumerate(opp.lines):
        prefix = f"OpportunityLineItems[{index}]"
        try:
            model = BillingModel(raw.billing_model or "")
        except ValueError:
            err(
                f"{prefix}.D2R_Billing_Model__c",
                "invalid",
                f"billing model {raw.billing_model!r} is not one of {[m.value for m in BillingModel]}",
            )
            continue
        method = DEFAULT_REVENUE_METHOD[model]
        if raw.revenue_method:
            try:
                method = RevenueMethod(raw.revenue_method)
            except ValueError:
                err(f"{prefix}.D2R_Revenue_Method__c", "invalid", f"revenue method {raw.revenue_method!r} is unknown")
                continue
        tm = model is BillingModel.TIME_AND_MATERIALS
        # A T&M line's consideration is variable: it may be sold with no amount (booked at 0).
        if raw.total_price is None and tm:
            pass
        elif raw.total_price is None or raw.total_price < 0 or (raw.total_price == 0 and not tm):
            err(f"{prefix}.TotalPrice", "invalid", "a contract line needs a positive amount")
            continue
        if tm and not raw.role:
            err(f"{prefix}.D2R_Role__c", "required", "a T&M line needs the rate-card role")
            continue
        line_errors = len(errors)
        _check_line_terms(raw, model, method, prefix, err)
        if currency_ok and len(errors) == line_errors:
            assert opp.currency is not None
            cur = opp.currency
            amount = raw.total_price or Decimal(0)
            lines.append(
                ContractLine(
                    line_id=raw.line_id,
                    name=raw.name or raw.product_code or raw.line_id,
                    billing_model=model,
                    revenue_method=method,
                    amount=Money(amount=amount, currency=cur),
                    role=raw.role,
                    hours=raw.hours,
                    bill_rate=(
                        Money(amount=raw.unit_price, currency=cur)
                        if tm and raw.unit_price and raw.unit_price > 0
                        else None
                    ),
                    estimate_at_completion=_money(raw.estimate_at_completion, cur),
                    not_to_exceed=_money(raw.not_to_exceed, cur),
                    milestones=[
                        MilestonePlan(
                            name=m.name or f"Milestone {n}",
                            weight=m.percent if m.percent is not None else m.amount or Decimal(0),
                            planned_date=m.planned_date,
                        )
                        for n, m in enumerate(raw.milestone_schedule, start=1)
                    ],
                )
            )

    if currency_ok and lines and opp.amount is not None:
        total = sum((line.amount.amount for line in lines), Decimal(0))
        if abs(total - opp.amount) > rules.amount_tolerance:
            err("Amount", "mismatch", f"the opportunity amount {opp.amount} is not the sum of its lines {total}")

    if errors:
        return errors

    assert opp.currency and opp.legal_entity and opp.name and opp.close_date
    assert opp.billing_terms and opp.service_package
    account = opp.accounts[0]
    assert account.name
    contract_value = Money(amount=sum((line.amount.amount for line in lines), Decimal(0)), currency=opp.currency)
    return Engagement(
        opportunity_id=opp.opportunity_id,
        name=opp.name,
        customer=Customer(
            customer_id=account.account_id,
            name=account.name,
            country=account.country,
            tax_id=account.tax_id,
            parent_id=account.parent_id,
            hierarchy=[node.account_id for node in opp.accounts],
        ),
        legal_entity=opp.legal_entity,
        currency=opp.currency,
        contract_value=contract_value,
        close_date=opp.close_date,
        billing_terms=opp.billing_terms,
        service_package=opp.service_package,
        delivery_region=opp.delivery_region,
        contract_start=opp.contract_start,
        contract_end=opp.contract_end,
        lines=lines,
    )
