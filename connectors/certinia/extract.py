"""Curated extracts from Certinia PSA for reconciliation: a legal entity's projects a page at a
time (Id order, a stable cursor) and, per project, the approved time worked in a period.

What counts is what time & expense posting posts (connectors/certinia/posting.py): timecards with
`pse__Status__c = 'Approved'` of the entity's projects (time belongs to the project's entity,
whoever employed the consultant that day), split into one entry per day with hours > 0, the
day in the period; valued at the card's `pse__Bill_Rate__c` (no rate: zero), as posting
values the hub's time facts. Whether a card is already posted does not matter: approved time
that never reached the ERP is exactly what reconciliation must find.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connectors.certinia.psa import IN_CHUNK, TIMECARD_FIELDS, _decimal, _timecard_days
from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.extracts import ExtractProject, ProjectTotal


class CertiniaExtract:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[ExtractProject]:
        """The entity's projects with an Id after `after`, in Id order."""
        rows = await self._sf.query_all(
            "SELECT Id, D2R_Legal_Entity__c, CurrencyIsoCode FROM pse__Proj__c "
            f"WHERE D2R_Legal_Entity__c = {soql_quote(legal_entity)} AND Id > {soql_quote(after)} "
            f"ORDER BY Id LIMIT {int(limit)}"
        )
        return [
            ExtractProject(
                project_id=r["Id"],
                legal_entity=r.get("D2R_Legal_Entity__c") or legal_entity,
                currency=r.get("CurrencyIsoCode"),
            )
            for r in rows
        ]

    async def approved_time(self, projects: list[ExtractProject], start: date, end: date) -> list[ProjectTotal]:
        """Approved hours and their bill amounts per project, for days from `start` to `end`.
        Record ids are the day entries (`<timecard id>:<date>`), as the hub's time facts."""
        by_id = {p.project_id: p for p in projects}
        ids = sorted(by_id)
        totals: dict[str, ProjectTotal] = {}
        # A timecard covers at most the seven days from its start date.
        first = (start - timedelta(days=6)).isoformat()
        for at in range(0, len(ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in ids[at : at + IN_CHUNK])
            cards = await self._sf.query_all(
                f"SELECT {TIMECARD_FIELDS}, pse__Project__c, pse__Bill_Rate__c FROM pse__Timecard_Header__c "
                f"WHERE pse__Project__c IN ({chunk}) AND pse__Status__c = 'Approved' "
                f"AND pse__Start_Date__c >= {first} AND pse__Start_Date__c <= {end.isoformat()} ORDER BY Id"
            )
            for card in cards:
                try:
                    days = [(d, h) for d, h in _timecard_days(card) if h > 0 and start <= d <= end]
                except (ValueError, TypeError, KeyError):
                    continue  # posting cannot read it either; it stays out of both sides
                if not days:
                    continue
                project = by_id[card["pse__Project__c"]]
                rate = _decimal(card.get("pse__Bill_Rate__c")) or Decimal(0)
                total = totals.setdefault(
                    project.project_id,
                    ProjectTotal(project_id=project.project_id, time_amount=Decimal(0), currency=project.currency),
                )
                for day, hours in days:
                    total.hours += hours
                    total.time_amount = (total.time_amount or Decimal(0)) + rate * hours
                    total.add_record(f"{card['Id']}:{day.isoformat()}")
        return [totals[k].finish() for k in sorted(totals)]
