"""Time & expense posting on Kantata: a legal entity's workspaces a page at a time, their
approved entries not yet posted, and the `d2r posting claim` / `d2r posted` custom fields
set back (custom field values are their own records, so an approved, locked entry still
takes them)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connectors.kantata.client import KantataClient, _id_order, from_cents
from domain.model import ExpenseEntry, Resource, TimeEntry
from domain.postings import PendingEntries, PostingProject

WORKSPACE, TIME, EXPENSE = "Workspace", "TimeEntry", "Expense"


async def entity_workspaces(k: KantataClient, legal_entity: str, after: str, limit: int) -> list[str]:
    """Ids of the entity's workspaces after `after`, in id order (a stable cursor: new
    workspaces get larger ids)."""
    ids = await k.find_by_value("d2r legal entity", WORKSPACE, legal_entity)
    floor = _id_order(after) if after else (-1, "")
    return [i for i in ids if _id_order(i) > floor][: int(limit)]


class KantataPosting:
    def __init__(self, client: KantataClient) -> None:
        self._k = client

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[PostingProject]:
        k = self._k
        ids = await entity_workspaces(k, legal_entity, after, limit)
        spaces = await k.list_ids("workspaces", "only", ids, {"include_archived": "true"})
        opportunity = await k.values_of("d2r opportunity", WORKSPACE, ids)
        customer = await k.values_of("d2r customer", WORKSPACE, ids)
        contract = await k.values_of("d2r contract", WORKSPACE, ids)
        by_id = {str(w["id"]): w for w in spaces.records}
        return [
            PostingProject(
                project_id=i,
                opportunity_id=_value(opportunity, i),
                customer_id=_value(customer, i),
                contract_id=_value(contract, i),
                legal_entity=legal_entity,
                currency=str(by_id[i]["currency"]),
            )
            for i in ids
            if i in by_id
        ]

    async def pending(self, projects: list[PostingProject], cutoff: date) -> PendingEntries:
        k = self._k
        out = PendingEntries(projects=projects)
        by_id = {p.project_id: p for p in projects}
        ids = sorted(by_id, key=_id_order)
        until = f"2000-01-01:{cutoff.isoformat()}"
        time = await k.list_ids(
            "time_entries", "workspace_id", ids, {"approved": "true", "date_performed_between": until}
        )
        expenses = await k.list_ids("expenses", "workspace_id", ids, {"approved": "true", "date_between": until})
        time_ids = [str(r["id"]) for r in time.records]
        expense_ids = [str(r["id"]) for r in expenses.records]
        posted = {**await k.values_of("d2r posted", TIME, time_ids)}
        posted_expenses = await k.values_of("d2r posted", EXPENSE, expense_ids)
        time_rows = [r for r in time.records if _value(posted, str(r["id"])) != "true"]
        expense_rows = [r for r in expenses.records if _value(posted_expenses, str(r["id"])) != "true"]
        lines = {
            **await k.values_of("d2r contract line", TIME, [str(r["id"]) for r in time_rows]),
        }
        expense_lines = await k.values_of("d2r contract line", EXPENSE, [str(r["id"]) for r in expense_rows])
        claims = await k.values_of("d2r posting claim", TIME, [str(r["id"]) for r in time_rows])
        expense_claims = await k.values_of("d2r posting claim", EXPENSE, [str(r["id"]) for r in expense_rows])
        out.claims = {
            **{sid: str(v["value"]) for sid, v in claims.items() if v.get("value")},
            **{sid: str(v["value"]) for sid, v in expense_claims.items() if v.get("value")},
        }
        user_ids = sorted({str(r["user_id"]) for r in (*time_rows, *expense_rows) if r.get("user_id")})
        people = await _resources(k, user_ids)  # user id -> resource (id: the employee's)
        out.resources = list(people.values())
        roles = {str(r["id"]): str(r["name"]) for r in (await k.listing("roles")).records}
        for row in time_rows:
            rid = str(row["id"])
            minutes = int(row.get("time_in_minutes") or 0)
            if str(row.get("user_id")) not in people:
                out.unreadable[rid] = f"time entry {rid} names no known user"
                continue
            if minutes <= 0:
                out.unreadable[rid] = f"time entry {rid} has no time"
                continue
            project = by_id[str(row["workspace_id"])]
            if row.get("rate_in_cents") is not None:
                out.bill_rates[rid] = from_cents(row["rate_in_cents"], project.currency).amount
            out.time_entries.append(
                TimeEntry(
                    entry_id=rid,
                    resource_id=people[str(row["user_id"])].resource_id,
                    project_id=project.project_id,
                    contract_line_id=_value(lines, rid) or "",
                    work_date=date.fromisoformat(row["date_performed"]),
                    hours=Decimal(minutes) / Decimal(60),
                    role=roles.get(str(row.get("role_id") or "")),
                    billable=bool(row.get("billable")),
                    approved_on=_day(row.get("updated_at")),
                )
            )
        for row in expense_rows:
            rid = str(row["id"])
            if row.get("amount_in_cents") is None or str(row.get("user_id")) not in people:
                out.unreadable[rid] = f"expense {rid} has no amount or known user"
                continue
            project = by_id[str(row["workspace_id"])]
            out.expenses.append(
                ExpenseEntry(
                    entry_id=rid,
                    resource_id=people[str(row["user_id"])].resource_id,
                    project_id=project.project_id,
                    contract_line_id=_value(expense_lines, rid) or "",
                    incurred_on=date.fromisoformat(row["date"]),
                    amount=from_cents(row["amount_in_cents"], row.get("currency") or project.currency),
                    category=(row.get("category") or "other").lower(),
                    billable=bool(row.get("billable")),
                    approved_on=_day(row.get("updated_at")),
                )
            )
        return out

    async def claim(self, time_entry_ids: list[str], expense_ids: list[str], claim: str) -> int:
        """Note on the entries which run page is about to post them in batch journals."""
        k = self._k
        n = await k.set_values("d2r posting claim", TIME, {i: claim for i in sorted(set(time_entry_ids))})
        return n + await k.set_values("d2r posting claim", EXPENSE, {i: claim for i in sorted(set(expense_ids))})

    async def mark_posted(self, time_entry_ids: list[str], expense_ids: list[str]) -> int:
        k = self._k
        n = await k.set_values("d2r posted", TIME, {i: "true" for i in sorted(set(time_entry_ids))})
        return n + await k.set_values("d2r posted", EXPENSE, {i: "true" for i in sorted(set(expense_ids))})


async def _resources(k: KantataClient, user_ids: list[str]) -> dict[str, Resource]:
    """Kantata user id -> the resource; its id is the firm's employee id (the ERP employee's
    external id, `d2r employee`) where Kantata holds one, so time posts to that employee."""
    users = await k.list_ids("users", "only", user_ids, include="role")
    home = await k.values_of("home legal entity", "User", user_ids)
    employee = await k.values_of("d2r employee", "User", user_ids)
    out: dict[str, Resource] = {}
    for user in users.records:
        role = users.related("roles", user.get("role_id")) or {}
        out[str(user["id"])] = Resource(
            resource_id=_value(employee, str(user["id"])) or str(user["id"]),
            name=user.get("full_name") or str(user["id"]),
            role=role.get("name") or user.get("headline") or "Consultant",
            home_legal_entity=_value(home, str(user["id"])) or "",
            cost_rate=from_cents(user.get("cost_rate_in_cents"), user.get("cost_rate_currency") or "USD"),
        )
    return out


def _value(values: dict[str, dict[str, Any]], subject_id: str) -> str | None:
    row = values.get(subject_id)
    return str(row["value"]) if row and row.get("value") not in (None, "") else None


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None
