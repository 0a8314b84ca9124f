"""Shared builders for the domain's worked examples."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.contract import ContractState, LineTerms, open_contract
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.money import Money


def d(text: str) -> date:
    return date.fromisoformat(text)


def money(amount: str | int, currency: str = "EUR") -> Money:
    return Money.of(str(amount), currency)


def line(
    line_id: str, model: BillingModel, method: RevenueMethod, amount: Money, role: str | None = None
) -> ContractLine:
    return ContractLine(
        line_id=line_id, name=line_id, billing_model=model, revenue_method=method, amount=amount, role=role
    )


def engagement(
    *lines: ContractLine,
    customer: Customer,
    legal_entity: str,
    currency: str,
    start: str = "2026-01-01",
    end: str = "2026-03-31",
    opportunity_id: str = "006OPP1",
) -> Engagement:
    return Engagement(
        opportunity_id=opportunity_id,
        name="Worked example",
        customer=customer,
        legal_entity=legal_entity,
        currency=currency,
        contract_value=Money(amount=sum((ln.amount.amount for ln in lines), Decimal(0)), currency=currency),
        close_date=d("2025-12-15"),
        billing_terms="Net 30",
        service_package="IMPL",
        contract_start=d(start),
        contract_end=d(end),
        lines=list(lines),
    )


def contract(eng: Engagement, terms: dict[str, LineTerms] | None = None) -> ContractState:
    return open_contract(eng, project_id="PRJ-1", contract_id="SO-1", line_terms=terms)
