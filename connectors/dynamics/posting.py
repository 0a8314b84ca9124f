"""ERP side of time & expense posting on D365: hour transactions keyed by d2r's id, sent a
page at a time in one `$batch` with one change set per record (a record D365 refuses fails
alone); summarized general journals whose lines name the PSA record they came from; and
ledger period status and lock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.dynamics.batch import Request
from connectors.dynamics.client import (
    SYSTEM,
    AlreadyExistsError,
    ConcurrencyError,
    DynamicsClient,
    error_from,
    key,
    literal,
)
from connectors.dynamics.erp import account_number, post_ledger_journal
from connectors.dynamics.keys import company_of, natural_key, qualified
from connectors.errors import (
    ConnectorError,
    DuplicateError,
    NotFoundError,
    PeriodLockedError,
    RetryableError,
    VendorValidationError,
)
from domain.postings import PostingJournal, PostOutcome, TimeBill

PER_RECORD = (VendorValidationError, NotFoundError, DuplicateError, PeriodLockedError)
BATCH_SIZE = 100  # hour transactions per $batch request
OPEN = "Open"
LOCKED = "OnHold"  # D365's "On hold": no posting, reopenable; Closed is for the year-end


def period_key(legal_entity: str, period: str) -> str:
    """`2026-11` -> the ledger's `Period 11` of fiscal year `2026` (a calendar-year calendar)."""
    year, month = period.split("-")
    return key(LedgerName=legal_entity.upper(), Calendar="Fiscal", YearName=year, PeriodName=f"Period {int(month)}")


class DynamicsPosting:
    def __init__(self, client: DynamicsClient, concurrency: int = 4) -> None:
        self._c = client
        self._gate = asyncio.Semaphore(concurrency)
        self._workers: dict[str, str] = {}

    async def _worker(self, employee_id: str) -> str | None:
        """The PersonnelNumber of the employee whose D2RReference is the PSA resource id."""
        if employee_id not in self._workers:
            found = await self._c.first(
                "Employees", f"D2RReference eq {literal(employee_id)}", select=("PersonnelNumber",)
            )
            if found is None:
                return None
            self._workers[employee_id] = str(found["PersonnelNumber"])
        return self._workers[employee_id]

    async def post_time_bills(self, bills: Sequence[TimeBill]) -> list[PostOutcome]:
        """Each bill is an hour transaction keyed by d2r's id: a create that meets the key
        was posted before (a retry after a lost answer), so it counts as posted."""
        outcomes: dict[str, PostOutcome] = {}
        requests: list[tuple[str, Request]] = []
        for bill in bills:
            worker = await self._worker(bill.employee_id)
            if worker is None:
                outcomes[bill.external_id] = PostOutcome(
                    key=bill.external_id, error_code="NotFound", error=f"no D365 employee for {bill.employee_id}"
                )
                continue
            company = company_of(bill.legal_entity)
            trans_id = natural_key("HRS-", bill.external_id)
            body = {
                "dataAreaId": company,
                "TransId": trans_id,
                "Worker": worker,
                "TransDate": bill.work_date.isoformat(),
                "Hours": bill.hours,
                "IsBillable": "Yes" if bill.billable else "No",
                "Text": bill.memo[:1000],
                "D2RReference": bill.external_id[:60],
                "D2RProjectId": bill.project_id[:30],
                "D2ROpportunityId": (bill.opportunity_id or "")[:30],
                "D2REntryId": bill.entry_id[:60],
            }
            requests.append((bill.external_id, Request("POST", "ProjectHourJournalLines", body)))
        for at in range(0, len(requests), BATCH_SIZE):
            chunk = requests[at : at + BATCH_SIZE]
            async with self._gate:
                results = await self._c.send_batch([[request] for _, request in chunk])
            for (external_id, request), result in zip(chunk, results, strict=True):
                response = result[0] if isinstance(result, list) else result
                if response.status < 300:
                    outcomes[external_id] = PostOutcome(
                        key=external_id,
                        record_id=qualified(request.body["dataAreaId"], request.body["TransId"]),  # type: ignore[index]
                    )
                    continue
                error = error_from(response.status, response.headers, response.body.decode("utf-8", "replace"))
                if isinstance(error, AlreadyExistsError):
                    outcomes[external_id] = PostOutcome(
                        key=external_id,
                        record_id=qualified(request.body["dataAreaId"], request.body["TransId"]),  # type: ignore[index]
                    )
                elif isinstance(error, RetryableError):
                    raise error  # the page is retried; the keys make that harmless
                else:
                    outcomes[external_id] = PostOutcome(
                        key=external_id, error_code=error.vendor_code or type(error).__name__, error=str(error)
                    )
        return [outcomes[b.external_id] for b in bills]

    async def journal_sources(self, external_id: str) -> list[str] | None:
        """The PSA records an already-posted batch journal covers; None if it does not exist."""
        header = await self._c.first("LedgerJournalHeaders", f"D2RReference eq {literal(external_id)}")
        if header is None:
            return None
        lines = await self._c.all(
            "LedgerJournalLines",
            f"dataAreaId eq {literal(str(header['dataAreaId']))} "
            f"and JournalBatchNumber eq {literal(str(header['JournalBatchNumber']))}",
            select=("D2RSourceId",),
        )
        return sorted({str(line["D2RSourceId"]) for line in lines if line.get("D2RSourceId")})

    async def post_journal(self, journal: PostingJournal) -> PostOutcome:
        company = company_of(journal.legal_entity)
        lines = []
        for line in journal.lines:
            entry: dict[str, Any] = {
                "TransDate": journal.tran_date.isoformat(),
                "AccountType": "Ledger",
                "AccountDisplayValue": account_number(line.account),
                "CurrencyCode": journal.currency,
                "Text": line.memo[:60],
                "D2RMemo": line.memo[:1000],
                "D2RSourceId": line.source_id[:60],
                "D2RProjectId": (line.project_id or "")[:30],
            }
            if line.debit is not None:
                entry["DebitAmount"] = line.debit
            if line.credit is not None:
                entry["CreditAmount"] = line.credit
            lines.append(entry)
        header = {"JournalName": "GenJrn", "Description": journal.memo[:60], "D2RReference": journal.external_id[:60]}
        async with self._gate:
            try:
                number = await post_ledger_journal(self._c, company, journal.external_id, header, lines)
            except PER_RECORD as error:
                return PostOutcome(
                    key=journal.external_id, error_code=error.vendor_code or type(error).__name__, error=str(error)
                )
        return PostOutcome(key=journal.external_id, record_id=qualified(company, number))

    async def period_status(self, period: str, legal_entity: str) -> str:
        """The ledger period's status: Open | OnHold | Closed | PermanentlyClosed."""
        found = await self._c.get("LedgerFiscalPeriods", period_key(legal_entity, period))
        if found is None:
            raise NotFoundError(f"no ledger period {period} for {legal_entity}", system=SYSTEM, status=404)
        return str(found["PeriodStatus"])

    async def lock_period(self, period: str, legal_entity: str | None = None) -> bool:
        """Put the legal entity's ledger period `2026-11` on hold (every company of the
        environment when none is named). True if this call locked it, False if it was not
        open any more. Safe to repeat; `If-Match` keeps two closes from crossing."""
        if legal_entity is None:
            companies = await self._c.all("LegalEntities", select=("LegalEntityId",), cross_company=False)
            results = [await self.lock_period(period, str(c["LegalEntityId"])) for c in companies]
            return any(results)
        record_key = period_key(legal_entity, period)
        for _ in range(5):
            found = await self._c.get("LedgerFiscalPeriods", record_key)
            if found is None:
                raise NotFoundError(f"no ledger period {period} for {legal_entity}", system=SYSTEM, status=404)
            if found.get("PeriodStatus") != OPEN:
                return False
            try:
                await self._c.patch(
                    "LedgerFiscalPeriods", record_key, {"PeriodStatus": LOCKED}, etag=found["@odata.etag"]
                )
                return True
            except ConcurrencyError:
                continue  # someone changed it meanwhile: read again
        raise ConnectorError(
            f"could not lock {period} for {legal_entity}", system=SYSTEM, vendor_code="CONCURRENT_UPDATE"
        )
