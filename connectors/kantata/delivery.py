"""Kantata records -> d2r's canonical delivery (time, expenses, milestones, resources,
rates) for one workspace."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connectors.kantata.client import Listing, from_cents
from connectors.psa_lines import LineMapper
from domain.billing import Delivery
from domain.deal import ContractLine
from domain.model import ExpenseEntry, Milestone, RateCard, RateCardEntry, Resource, TimeEntry

STORY, TIME, EXPENSE = "Story", "TimeEntry", "Expense"


def _date(value: Any) -> date | None:
    if not value:
        return None
    text = str(value)
    return date.fromisoformat(text[:10]) if len(text) >= 10 else None


class Custom:
    """Side-loaded custom field values: (field name, subject type, subject id) -> value."""

    def __init__(self, listings: tuple[Listing, ...], field_ids: dict[tuple[str, str], str]) -> None:
        self._names = {fid: name for (name, _subject), fid in field_ids.items()}
        self._values: dict[tuple[str, str, str], str] = {}
        for listing in listings:
            for v in listing.included.get("custom_field_values", {}).values():
                name = self._names.get(str(v["custom_field_id"]))
                if name is not None:
                    self._values[(name, str(v["subject_type"]), str(v["subject_id"]))] = str(v["value"])

    def get(self, name: str, subject: str, subject_id: Any) -> str | None:
        return self._values.get((name, subject, str(subject_id)))


def resource_of(user: dict[str, Any], users: Listing, custom: Custom) -> Resource:
    role = users.related("roles", user.get("role_id"))
    currency = user.get("cost_rate_currency") or "USD"
    home = custom.get("home legal entity", "User", user["id"]) or ""
    return Resource(
        # the firm's employee id (the ERP's employee) when Kantata holds one, else the user id
        resource_id=custom.get("d2r employee", "User", user["id"]) or str(user["id"]),
        name=user.get("full_name") or str(user["id"]),
        role=(role or {}).get("name") or user.get("headline") or "Consultant",
        home_legal_entity=home,
        cost_rate=from_cents(user.get("cost_rate_in_cents"), currency),
    )


def delivery_of(
    workspace: dict[str, Any],
    lines: list[ContractLine],
    cutoff: date,
    time_rows: list[dict[str, Any]],
    expense_rows: list[dict[str, Any]],
    milestone_rows: list[dict[str, Any]],
    custom: Custom,
    all_resources: dict[str, Resource],
    card_roles: list[dict[str, Any]],
    role_names: dict[str, str],
) -> Delivery:
    project_id = str(workspace["id"])
    currency = str(workspace["currency"])
    mapper = LineMapper(lines)

    time_entries = []
    for row in time_rows:
        role = role_names.get(str(row.get("role_id") or ""))
        user = all_resources.get(str(row.get("user_id")))
        line_id = mapper.for_time(
            custom.get("d2r contract line", TIME, row["id"]), role or (user.role if user else None)
        )
        minutes = int(row.get("time_in_minutes") or 0)
        worked = date.fromisoformat(row["date_performed"])
        if line_id is None or minutes <= 0 or worked > cutoff:
            continue
        time_entries.append(
            TimeEntry(
                entry_id=str(row["id"]),
                resource_id=_person(all_resources, row),
                project_id=project_id,
                contract_line_id=line_id,
                work_date=worked,
                hours=Decimal(minutes) / Decimal(60),
                role=role,
                billable=bool(row.get("billable")),
                approved_on=_date(row.get("updated_at")),
            )
        )

    expense_entries = []
    for row in expense_rows:
        line_id = mapper.for_expense(custom.get("d2r contract line", EXPENSE, row["id"]))
        if line_id is None or row.get("amount_in_cents") is None:
            continue
        expense_entries.append(
            ExpenseEntry(
                entry_id=str(row["id"]),
                resource_id=_person(all_resources, row),
                project_id=project_id,
                contract_line_id=line_id,
                incurred_on=date.fromisoformat(row["date"]),
                amount=from_cents(row["amount_in_cents"], row.get("currency") or currency),
                category=(row.get("category") or "other").lower(),
                billable=bool(row.get("billable")),
                approved_on=_date(row.get("updated_at")),
            )
        )

    delivered_milestones = []
    for row in milestone_rows:
        line_id = mapper.for_milestone(custom.get("d2r contract line", STORY, row["id"]))
        if line_id is None:
            continue
        percent = custom.get("d2r percent", STORY, row["id"])
        weight = Decimal(percent) if percent else Decimal(int(row.get("budget_estimate_in_cents") or 0))
        delivered_milestones.append(
            Milestone(
                milestone_id=str(row["id"]),
                name=row.get("title") or str(row["id"]),
                contract_line_id=line_id,
                weight=weight,
                due_date=_date(row.get("due_date")),
                completed_on=_date(row.get("completed_at")) if row.get("state") == "completed" else None,
            )
        )

    used = {e.resource_id for e in time_entries} | {e.resource_id for e in expense_entries}
    rate_card = RateCard(
        rate_card_id=f"{project_id}:{currency}",
        currency=currency,
        entries=[
            RateCardEntry(
                role=role_names.get(str(rr["role_id"]), str(rr["role_id"])),
                bill_rate=from_cents(rr["rate_in_cents"], currency).amount,
                effective_from=date.min,
            )
            for rr in card_roles
        ],
    )
    return Delivery(
        time_entries=time_entries,
        expenses=expense_entries,
        milestones=delivered_milestones,
        resources=sorted((r for r in all_resources.values() if r.resource_id in used), key=lambda r: r.resource_id),
        rate_card=rate_card if card_roles else None,
    )


def _person(resources: dict[str, Resource], row: dict[str, Any]) -> str:
    """The resource id of an entry's Kantata user (the user id when the user is unknown)."""
    found = resources.get(str(row.get("user_id")))
    return found.resource_id if found is not None else str(row["user_id"])
