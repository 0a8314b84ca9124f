"""Curated extracts from a D365 environment for reconciliation, through OData queries.

Time, as posting writes it (connectors/dynamics/posting.py), either way:
- hour transactions (`ProjectHourJournalLines`, one per day entry, `TransDate` = the day
  worked, `Hours`, `D2RProjectId`, `D2REntryId`), in the environment of the entity that
  employed the consultant that day — so every environment is asked, by project;
- time lines of posting's batch journals (`D2RReference`
  `<posting run id>:p<page>:time:<entity>:<currency>:<n>`), one debit line per day entry
  with `D2RProjectId` and `D2RMemo` `time <timecard id>:<date> <hours>h`; reversals
  (`Reversal: ...`, swapped) count negative.
Invoices: posted free-text invoices of the company dated in the period, per
`D2RProjectId`, at their total with tax (credit notes and their undoing are not invoices).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.dynamics.client import DynamicsClient, literal
from connectors.dynamics.keys import company_of
from connectors.dynamics.receivables import IN_CHUNK, any_of
from domain.extracts import ProjectTotal

_TIME_MEMO = re.compile(
    r"^(?P<reversal>Reversal: )?time (?P<entry>[^\s:]+:(?P<day>\d{4}-\d{2}-\d{2})) (?P<hours>-?\d+(?:\.\d+)?)h$"
)


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _finish(totals: dict[str, ProjectTotal]) -> list[ProjectTotal]:
    return [totals[k].finish() for k in sorted(totals)]


class DynamicsExtract:
    def __init__(self, client: DynamicsClient) -> None:
        self._c = client

    @property
    def instance(self) -> str:
        return self._c.config.instance

    async def time_bills(self, project_ids: list[str], start: date, end: date) -> list[ProjectTotal]:
        totals: dict[str, ProjectTotal] = {}
        ids = sorted(set(project_ids))
        for at in range(0, len(ids), IN_CHUNK):
            rows = await self._c.all(
                "ProjectHourJournalLines",
                f"{any_of('D2RProjectId', ids[at : at + IN_CHUNK])} "
                f"and TransDate ge {start.isoformat()} and TransDate le {end.isoformat()}",
                select=("TransId", "Hours", "D2RProjectId", "D2REntryId"),
                orderby="TransId",
            )
            for row in rows:
                project = str(row["D2RProjectId"])
                total = totals.setdefault(project, ProjectTotal(project_id=project))
                total.hours += _number(row.get("Hours"))
                total.add_record(str(row.get("D2REntryId") or row["TransId"]))
        return _finish(totals)

    async def time_journal_lines(self, run_prefix: str, start: date, end: date) -> tuple[int, list[ProjectTotal]]:
        headers = await self._c.all(
            "LedgerJournalHeaders",
            f"startswith(D2RReference,{literal(run_prefix)}) and contains(D2RReference,':time:') "
            "and IsPosted eq Microsoft.Dynamics.DataEntities.NoYes'Yes'",
            select=("dataAreaId", "JournalBatchNumber"),
            orderby="JournalBatchNumber",
        )
        totals: dict[str, ProjectTotal] = {}
        first, last = start.isoformat(), end.isoformat()
        for header in headers:
            lines = await self._c.all(
                "LedgerJournalLines",
                f"dataAreaId eq {literal(str(header['dataAreaId']))} "
                f"and JournalBatchNumber eq {literal(str(header['JournalBatchNumber']))}",
                select=("D2RMemo", "D2RProjectId", "DebitAmount", "CreditAmount"),
            )
            for line in lines:
                match = _TIME_MEMO.match(str(line.get("D2RMemo") or ""))
                project = line.get("D2RProjectId")
                if match is None or not project or not first <= match["day"] <= last:
                    continue
                if match["reversal"]:
                    if not _number(line.get("CreditAmount")):
                        continue
                    sign = Decimal(-1)
                elif _number(line.get("DebitAmount")):
                    sign = Decimal(1)
                else:
                    continue
                total = totals.setdefault(str(project), ProjectTotal(project_id=str(project)))
                total.hours += sign * Decimal(match["hours"])
                total.add_record(match["entry"])
        return len(headers), _finish(totals)

    async def subsidiary_id(self, legal_entity: str) -> str | None:
        found = await self._c.get("LegalEntities", f"(LegalEntityId={literal(legal_entity.upper())})")
        return company_of(legal_entity) if found is not None else None

    async def invoices(self, legal_entity: str, start: date, end: date) -> list[ProjectTotal]:
        company = company_of(legal_entity)
        rows = await self._c.all(
            "FreeTextInvoiceHeaders",
            f"dataAreaId eq {literal(company)} and IsPosted eq Microsoft.Dynamics.DataEntities.NoYes'Yes' "
            f"and InvoiceDate ge {start.isoformat()} and InvoiceDate le {end.isoformat()} "
            "and TotalInvoiceAmount gt 0 and not endswith(D2RReference,':void')",
            select=("InvoiceId", "D2RReference", "D2RProjectId", "TotalInvoiceAmount", "CurrencyCode"),
            orderby="InvoiceId",
        )
        totals: dict[str, ProjectTotal] = {}
        for row in rows:
            project = row.get("D2RProjectId")
            if not project:
                continue
            total = totals.setdefault(str(project), ProjectTotal(project_id=str(project), invoice_total=Decimal(0)))
            total.invoice_total = (total.invoice_total or Decimal(0)) + _number(row.get("TotalInvoiceAmount"))
            total.add_record(str(row.get("D2RReference") or row["InvoiceId"]))
            total.currency = str(row.get("CurrencyCode") or "") or None
        return _finish(totals)
