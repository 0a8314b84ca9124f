"""Curated extracts from a NetSuite instance for reconciliation, through SuiteQL (paged by
limit/offset) and record reads.

Time, as posting writes it (connectors/netsuite/posting.py), either way:
- time bills (`timeBill`, one per day entry, `tranDate` = the day worked, `hours`,
  `custcol_d2r_project_id`, `custcol_d2r_entry_id`), in the instance of the entity that
  employed the consultant that day — so every instance is asked, by project;
- time lines of posting's batch journals (`journalEntry` external id
  `<posting run id>:p<page>:time:<entity>:<currency>:<n>`, the run id being
  `posting-<project entity>-...`), one debit line per day entry with
  `custcol_d2r_project_id` and the memo `time <timecard id>:<date> <hours>h`, read in one
  SuiteQL join of `transaction`, `transactionline` and `transactionaccountingline` (the GL
  side of each line). A journal is dated the posting day, never before the days it
  carries, so journals dated from the period's first day on are read. Reversals
  (`...:reversal`, debits and credits swapped) count negative.
Neither carries a bill amount (time bills have none, journals carry cost): time_amount is
left empty.

Invoices: `CustInvc` transactions of the entity's subsidiary (on the main line: SuiteQL's
`transaction` has no subsidiary) dated in the period, per `custbody_d2r_project_id`, at
their total (`foreigntotal`: lines plus tax). Dates go out through TO_DATE, so the account's
date format only matters where dates come back.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.dates import to_date_literal
from domain.extracts import ProjectTotal

IN_CHUNK = 200
_TIME_MEMO = re.compile(
    r"^(?P<reversal>Reversal: )?time (?P<entry>[^\s:]+:(?P<day>\d{4}-\d{2}-\d{2})) "
    r"(?P<hours>-?\d+(?:\.\d+)?)h$"
)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _finish(totals: dict[str, ProjectTotal]) -> list[ProjectTotal]:
    return [totals[k].finish() for k in sorted(totals)]


class NetSuiteExtract:
    def __init__(self, client: NetSuiteClient, page_size: int = 1000) -> None:
        self._ns = client
        self._page = page_size

    @property
    def instance(self) -> str:
        return self._ns.config.instance

    async def time_bills(self, project_ids: list[str], start: date, end: date) -> list[ProjectTotal]:
        """Hours of the time bills of these projects worked from `start` to `end`."""
        totals: dict[str, ProjectTotal] = {}
        ids = sorted(set(project_ids))
        for at in range(0, len(ids), IN_CHUNK):
            chunk = ", ".join(_quote(i) for i in ids[at : at + IN_CHUNK])
            query = (
                "SELECT id, externalid, hours, trandate, custcol_d2r_project_id, custcol_d2r_entry_id "
                f"FROM timebill WHERE custcol_d2r_project_id IN ({chunk}) "
                f"AND trandate >= {to_date_literal(start)} AND trandate <= {to_date_literal(end)} "
                "ORDER BY id"
            )
            async for row in self._ns.suiteql(query, page_size=self._page):
                project = str(row["custcol_d2r_project_id"])
                total = totals.setdefault(project, ProjectTotal(project_id=project))
                total.hours += _number(row.get("hours"))
                total.add_record(str(row.get("custcol_d2r_entry_id") or row.get("externalid") or row["id"]))
        return _finish(totals)

    async def time_journal_lines(self, run_prefix: str, start: date, end: date) -> tuple[int, list[ProjectTotal]]:
        """Hours of the time lines, for days from `start` to `end`, of the posting journals
        whose external id starts with `run_prefix` (e.g. `posting-US01-`). Returns the number
        of journals read and the totals per project."""
        query = (
            "SELECT t.id, tl.id AS line, tl.memo, tl.custcol_d2r_project_id, tal.debit, tal.credit "
            "FROM transaction t "
            "INNER JOIN transactionline tl ON tl.transaction = t.id "
            "INNER JOIN transactionaccountingline tal ON tal.transaction = tl.transaction "
            "AND tal.transactionline = tl.id "
            f"WHERE t.type = 'Journal' AND t.externalid LIKE {_quote(run_prefix + '%:time:%')} "
            f"AND t.trandate >= {to_date_literal(start)} ORDER BY t.id, tl.id"
        )
        journals: set[str] = set()
        totals: dict[str, ProjectTotal] = {}
        first, last = start.isoformat(), end.isoformat()
        async for line in self._ns.suiteql(query, page_size=self._page):
            journals.add(str(line["id"]))
            match = _TIME_MEMO.match(str(line.get("memo") or ""))
            project = line.get("custcol_d2r_project_id")
            if match is None or not project or not first <= match["day"] <= last:
                continue
            # The cost debit carries the entry (its accrual credit repeats the memo);
            # in a reversal the same line comes back as a credit.
            if match["reversal"]:
                if not line.get("credit"):
                    continue
                sign = Decimal(-1)
            elif line.get("debit"):
                sign = Decimal(1)
            else:
                continue
            total = totals.setdefault(str(project), ProjectTotal(project_id=str(project)))
            total.hours += sign * Decimal(match["hours"])
            total.add_record(match["entry"])
        return len(journals), _finish(totals)

    async def subsidiary_id(self, legal_entity: str) -> str | None:
        return await self._ns.subsidiary_id(legal_entity)

    async def invoices(self, legal_entity: str, start: date, end: date) -> list[ProjectTotal]:
        """Invoice totals per project of the entity's invoices dated from `start` to `end`
        (invoices that name no project cannot be reconciled per project and are left out).
        Record ids are d2r's invoice ids (the external id), as the hub's invoice facts."""
        subsidiary = await self.subsidiary_id(legal_entity)
        if subsidiary is None:
            return []
        query = (
            "SELECT t.id, t.externalid, t.foreigntotal, t.currency, t.custbody_d2r_project_id "
            "FROM transaction t INNER JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'T' "
            f"WHERE t.type = 'CustInvc' AND tl.subsidiary = {int(subsidiary)} "
            f"AND t.trandate >= {to_date_literal(start)} AND t.trandate <= {to_date_literal(end)} "
            "ORDER BY t.id"
        )
        totals: dict[str, ProjectTotal] = {}
        currencies: dict[str, str] = {}
        async for row in self._ns.suiteql(query, page_size=self._page):
            project = row.get("custbody_d2r_project_id")
            if not project:
                continue
            total = totals.setdefault(str(project), ProjectTotal(project_id=str(project), invoice_total=Decimal(0)))
            total.invoice_total = (total.invoice_total or Decimal(0)) + _number(row.get("foreigntotal"))
            total.add_record(str(row.get("externalid") or row["id"]))
            if row.get("currency") is not None:
                currencies.setdefault(str(project), str(row["currency"]))
        codes = await self._currency_codes(sorted(set(currencies.values())))
        for project, currency_id in currencies.items():
            totals[project].currency = codes.get(currency_id)
        return _finish(totals)

    async def _currency_codes(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        query = f"SELECT id, symbol FROM currency WHERE id IN ({', '.join(str(int(i)) for i in ids)})"
        out: dict[str, str] = {}
        async for row in self._ns.suiteql(query, page_size=self._page):
            code = row.get("symbol")
            if isinstance(code, str) and len(code) == 3:
                out[str(row["id"])] = code.upper()
        return out
