"""PSA side of time & expense posting on Certinia: approved, not-yet-posted timecards and
expenses of a legal entity's projects, read one chunk of projects at a time, and the
`D2R_Posted__c` flag set back through sObject Collections (200 records per call)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.certinia.psa import (
    EXPENSE_FIELDS,
    IN_CHUNK,
    TIMECARD_FIELDS,
    _date,
    _decimal,
    _resource,
    _timecard_days,
)
from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.model import ExpenseEntry, ResourceTransfer, TimeEntry
from domain.money import Money
from domain.postings import PendingEntries, PostingProject

RESOURCE_FIELDS = (
    "Id, Name, pse__Resource_Role__c, D2R_Home_Legal_Entity__c, "
    "pse__Default_Cost_Rate__c, CurrencyIsoCode, D2R_Transfers__c"
)
PROJECT_FIELDS = (
    "Id, Name, pse__Opportunity__c, pse__Account__c, D2R_Legal_Entity__c, D2R_Contract_Id__c, CurrencyIsoCode"
)


def _transfers(raw: Any) -> list[ResourceTransfer]:
    """`D2R_Transfers__c`: a JSON list of {effective_from, legal_entity, cost_rate?, currency?, role?}."""
    if not raw:
        return []
    out = []
    for item in json.loads(raw):
        cost = item.get("cost_rate")
        out.append(
            ResourceTransfer(
                effective_from=date.fromisoformat(item["effective_from"]),
                legal_entity=item["legal_entity"],
                role=item.get("role"),
                cost_rate=Money(amount=Decimal(str(cost)), currency=item.get("currency") or "USD")
                if cost is not None
                else None,
            )
        )
    return out


class CertiniaPosting:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[PostingProject]:
        """The entity's projects with an Id after `after`, in Id order (a stable cursor:
        new projects get larger ids)."""
        rows = await self._sf.query_all(
            f"SELECT {PROJECT_FIELDS} FROM pse__Proj__c WHERE D2R_Legal_Entity__c = {soql_quote(legal_entity)} "
            f"AND Id > {soql_quote(after)} ORDER BY Id LIMIT {int(limit)}"
        )
        return [
            PostingProject(
                project_id=r["Id"],
                opportunity_id=r.get("pse__Opportunity__c"),
                customer_id=r.get("pse__Account__c"),
                contract_id=r.get("D2R_Contract_Id__c"),
                legal_entity=r.get("D2R_Legal_Entity__c") or legal_entity,
                currency=r.get("CurrencyIsoCode") or "USD",
            )
            for r in rows
        ]

    async def pending(self, projects: list[PostingProject], cutoff: date) -> PendingEntries:
        out = PendingEntries(projects=projects)
        by_id = {p.project_id: p for p in projects}
        ids = sorted(by_id)
        day = cutoff.isoformat()
        cards: list[dict[str, Any]] = []
        expenses: list[dict[str, Any]] = []
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in ids[start : start + IN_CHUNK])
            cards += await self._sf.query_all(
                f"SELECT {TIMECARD_FIELDS}, pse__Project__c, pse__Bill_Rate__c, D2R_Posting_Claim__c "
                "FROM pse__Timecard_Header__c "
                f"WHERE pse__Project__c IN ({chunk}) AND pse__Status__c = 'Approved' AND D2R_Posted__c = false "
                f"AND pse__Start_Date__c <= {day} ORDER BY Id"
            )
            expenses += await self._sf.query_all(
                f"SELECT {EXPENSE_FIELDS}, pse__Project__c, D2R_Posting_Claim__c FROM pse__Expense__c "
                f"WHERE pse__Project__c IN ({chunk}) AND pse__Status__c = 'Approved' AND D2R_Posted__c = false "
                f"AND pse__Expense_Date__c <= {day} ORDER BY Id"
            )
        resource_ids = sorted({r["pse__Resource__c"] for r in (*cards, *expenses) if r.get("pse__Resource__c")})
        for start in range(0, len(resource_ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in resource_ids[start : start + IN_CHUNK])
            for row in await self._sf.query_all(f"SELECT {RESOURCE_FIELDS} FROM Contact WHERE Id IN ({chunk})"):
                resource = _resource(row)
                try:
                    resource.transfers = _transfers(row.get("D2R_Transfers__c"))
                except (ValueError, KeyError, TypeError) as error:
                    for card in cards:
                        if card.get("pse__Resource__c") == row["Id"]:
                            out.unreadable[card["Id"]] = f"resource {row['Id']} has unreadable transfers: {error}"
                out.resources.append(resource)
        out.claims = {
            r["Id"]: str(r["D2R_Posting_Claim__c"]) for r in (*cards, *expenses) if r.get("D2R_Posting_Claim__c")
        }
        known = {r.resource_id for r in out.resources}
        for card in cards:
            if card["Id"] in out.unreadable:
                continue
            resource_id = card.get("pse__Resource__c")
            if not resource_id or resource_id not in known:
                out.unreadable[card["Id"]] = f"timecard {card['Id']} names no known resource"
                continue
            try:
                days = [(d, h) for d, h in _timecard_days(card) if h > 0]
            except (ValueError, TypeError, KeyError) as error:
                out.unreadable[card["Id"]] = f"timecard {card['Id']} is unreadable: {error}"
                continue
            if not days:
                out.unreadable[card["Id"]] = f"timecard {card['Id']} has no hours"
                continue
            rate = _decimal(card.get("pse__Bill_Rate__c"))
            if rate is not None:
                out.bill_rates[card["Id"]] = rate
            for work_date, hours in days:
                if work_date > cutoff:
                    continue
                out.time_entries.append(
                    TimeEntry(
                        entry_id=f"{card['Id']}:{work_date.isoformat()}",
                        resource_id=str(resource_id),
                        project_id=card["pse__Project__c"],
                        contract_line_id=card.get("D2R_Contract_Line_Id__c") or "",
                        work_date=work_date,
                        hours=hours,
                        role=card.get("D2R_Role__c"),
                        billable=bool(card.get("pse__Billable__c")),
                        approved_on=_date(card.get("LastModifiedDate")),
                    )
                )
        for row in expenses:
            amount = _decimal(row.get("pse__Amount__c"))
            if amount is None or not row.get("pse__Resource__c"):
                out.unreadable[row["Id"]] = f"expense {row['Id']} has no amount or resource"
                continue
            project = by_id[row["pse__Project__c"]]
            out.expenses.append(
                ExpenseEntry(
                    entry_id=row["Id"],
                    resource_id=row["pse__Resource__c"],
                    project_id=row["pse__Project__c"],
                    contract_line_id=row.get("D2R_Contract_Line_Id__c") or "",
                    incurred_on=date.fromisoformat(row["pse__Expense_Date__c"]),
                    amount=Money(amount=amount, currency=row.get("CurrencyIsoCode") or project.currency),
                    category=(row.get("pse__Type__c") or "other").lower(),
                    billable=bool(row.get("pse__Billable__c")),
                    approved_on=_date(row.get("LastModifiedDate")),
                )
            )
        return out

    async def claim(self, timecard_ids: list[str], expense_ids: list[str], claim: str) -> int:
        """Note on the records which run page is about to post them in batch journals, so a
        later run that finds them still unposted can look for that page's journals."""
        updated = await self._sf.update_many(
            "pse__Timecard_Header__c", [{"Id": i, "D2R_Posting_Claim__c": claim} for i in sorted(set(timecard_ids))]
        )
        updated += await self._sf.update_many(
            "pse__Expense__c", [{"Id": i, "D2R_Posting_Claim__c": claim} for i in sorted(set(expense_ids))]
        )
        return updated

    async def mark_posted(self, timecard_ids: list[str], expense_ids: list[str]) -> int:
        updated = await self._sf.update_many(
            "pse__Timecard_Header__c", [{"Id": i, "D2R_Posted__c": True} for i in sorted(set(timecard_ids))]
        )
        updated += await self._sf.update_many(
            "pse__Expense__c", [{"Id": i, "D2R_Posted__c": True} for i in sorted(set(expense_ids))]
        )
        return updated
