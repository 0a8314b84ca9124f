"""Curated extracts from Kantata for reconciliation: a legal entity's workspaces a page at
a time and, per workspace, the approved time worked in a period, valued at each entry's
`rate_in_cents` as posting values the hub's time facts. Whether an entry is posted or
invoiced does not matter: approved time that never reached the ERP is what reconciliation
must find."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.kantata.client import KantataClient, _id_order, from_cents
from connectors.kantata.posting import entity_workspaces
from domain.extracts import ExtractProject, ProjectTotal


class KantataExtract:
    def __init__(self, client: KantataClient) -> None:
        self._k = client

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[ExtractProject]:
        ids = await entity_workspaces(self._k, legal_entity, after, limit)
        spaces = await self._k.list_ids("workspaces", "only", ids, {"include_archived": "true"})
        currency = {str(w["id"]): str(w["currency"]) for w in spaces.records}
        return [
            ExtractProject(project_id=i, legal_entity=legal_entity, currency=currency[i]) for i in ids if i in currency
        ]

    async def approved_time(self, projects: list[ExtractProject], start: date, end: date) -> list[ProjectTotal]:
        by_id = {p.project_id: p for p in projects}
        rows = await self._k.list_ids(
            "time_entries",
            "workspace_id",
            sorted(by_id, key=_id_order),
            {"approved": "true", "date_performed_between": f"{start.isoformat()}:{end.isoformat()}"},
        )
        totals: dict[str, ProjectTotal] = {}
        for row in rows.records:
            minutes = int(row.get("time_in_minutes") or 0)
            if minutes <= 0:
                continue  # posting cannot post it either; it stays out of both sides
            project = by_id[str(row["workspace_id"])]
            currency = project.currency or str(row.get("currency") or "USD")
            total = totals.setdefault(
                project.project_id,
                ProjectTotal(project_id=project.project_id, time_amount=Decimal(0), currency=currency),
            )
            hours = Decimal(minutes) / Decimal(60)
            rate = from_cents(row.get("rate_in_cents"), currency).amount
            total.hours += hours
            total.time_amount = (total.time_amount or Decimal(0)) + rate * hours
            total.add_record(str(row["id"]))
        return [totals[k].finish() for k in sorted(totals, key=_id_order)]
