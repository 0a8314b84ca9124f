"""Intercompany: consultants of one legal entity working on another entity's project.

The contracting entity bills the customer; the entity that employs the consultant on
the day worked charges the contracting entity a transfer price (cost plus a markup, per
entity pair). A transfer between entities takes effect on its date, so one month's
timesheet can be split between two providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.fx import Converted, FxRateTable
from domain.model import EntryStatus, Lineage, Resource, TimeEntry, digest, record_id
from domain.money import Money, sum_money
from domain.periods import Period, period_end, period_of


class TransferPricing(BaseModel):
    default_markup: Decimal = Decimal("0.10")
    # "PROVIDER>RECEIVER" -> markup, for pairs a transfer-pricing study sets differently.
    markups: dict[str, Decimal] = Field(default_factory=dict)

    def markup(self, provider: str, receiver: str) -> Decimal:
        return self.markups.get(f"{provider}>{receiver}", self.default_markup)


class IntercompanyCharge(BaseModel):
    charge_id: str
    lineage: Lineage  # legal_entity is the receiver: the entity that owns the project
    period: Period
    charge_date: date
    provider_entity: str
    receiver_entity: str
    resource_id: str
    hours: Decimal
    cost: Money  # the provider's cost, in the provider's currency, unrounded
    markup: Decimal
    amount: Money  # the transfer price: a document amount, rounded
    entry_ids: list[str]
    receiver_amount: Converted | None = None  # in the receiver's functional currency


def split_by_entity(resource: Resource, entries: Sequence[TimeEntry]) -> dict[str, list[TimeEntry]]:
    """Time entries grouped by the legal entity the consultant belonged to on each day."""
    out: dict[str, list[TimeEntry]] = {}
    for entry in sorted(entries, key=lambda e: (e.work_date, e.entry_id)):
        if entry.resource_id != resource.resource_id:
            continue
        out.setdefault(resource.position_on(entry.work_date).legal_entity, []).append(entry)
    return out


def intercompany_charges(
    lineage: Lineage,
    period: str,
    time_entries: Sequence[TimeEntry],
    resources: Sequence[Resource],
    pricing: TransferPricing,
    *,
    receiver_currency: str | None = None,
    fx: FxRateTable | None = None,
) -> list[IntercompanyCharge]:
    """One charge per provider entity and consultant for the period's approved hours.

    Non-billable hours are charged too: the provider's cost is real either way.
    """
    receiver = lineage.legal_entity
    on = period_end(period)
    by_id = {r.resource_id: r for r in resources}
    charges: list[IntercompanyCharge] = []
    for resource_id in sorted({e.resource_id for e in time_entries}):
        resource = by_id.get(resource_id)
        if resource is None:
            raise LookupError(f"unknown resource {resource_id}")
        mine = [
            e
            for e in time_entries
            if e.resource_id == resource_id
            and e.project_id == lineage.project_id
            and e.status is EntryStatus.APPROVED
            and period_of(e.work_date) == period
        ]
        for provider, entries in sorted(split_by_entity(resource, mine).items()):
            if provider == receiver:
                continue
            costs = [resource.cost_rate_on(e.work_date).times(e.hours) for e in entries]
            currency = costs[0].currency
            cost = sum_money(costs, currency)
            markup = pricing.markup(provider, receiver)
            amount = cost.times(1 + markup).rounded()
            charges.append(
                IntercompanyCharge(
                    charge_id=record_id(
                        "ic", lineage.project_id, period, provider, resource_id, digest(*(e.entry_id for e in entries))
                    ),
                    lineage=lineage,
                    period=period,
                    charge_date=on,
                    provider_entity=provider,
                    receiver_entity=receiver,
                    resource_id=resource_id,
                    hours=sum((e.hours for e in entries), Decimal(0)),
                    cost=cost,
                    markup=markup,
                    amount=amount,
                    entry_ids=[e.entry_id for e in entries],
                    receiver_amount=(
                        fx.convert(amount, receiver_currency, on)
                        if fx is not None and receiver_currency and receiver_currency != currency
                        else None
                    ),
                )
            )
    return charges
