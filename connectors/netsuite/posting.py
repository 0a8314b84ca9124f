"""ERP side of time & expense posting on NetSuite: time bills upserted by externalId,
summarized journal entries whose lines name the PSA record they came from (so a retry
can tell what a batch already holds), and accounting-period locks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.errors import (
    DuplicateError,
    NotFoundError,
    PeriodLockedError,
    VendorValidationError,
)
from connectors.netsuite.client import SYSTEM, NetSuiteClient
from connectors.netsuite.erp import default_account_map
from domain.postings import PostingJournal, PostOutcome, TimeBill

PER_RECORD = (VendorValidationError, NotFoundError, DuplicateError, PeriodLockedError)


SUBSIDIARY_LOCKS = "custrecord_d2r_locked_subsidiaries"  # comma-separated subsidiary ids


class NetSuitePosting:
    def __init__(self, client: NetSuiteClient, concurrency: int = 8) -> None:
        self._ns = client
        self._gate = asyncio.Semaphore(concurrency)

    async def post_time_bills(self, bills: Sequence[TimeBill]) -> list[PostOutcome]:
        """Upsert each time bill; a record the ERP refuses for good is reported, not raised,
        so one poison record never blocks the batch. Transient trouble raises (the activity
        retries the page, and the upserts make that harmless)."""

        async def one(bill: TimeBill) -> PostOutcome:
            body: dict[str, Any] = {
                "employee": {"externalId": bill.employee_id},
                "subsidiary": {"externalId": bill.legal_entity},
                "tranDate": bill.work_date.isoformat(),
                "hours": bill.hours,
                "isBillable": bill.billable,
                "approvalStatus": "Approved",
                "memo": bill.memo[:4000],
                "custcol_d2r_entry_id": bill.entry_id,
                "custcol_d2r_project_id": bill.project_id,
                "custcol_d2r_opportunity_id": bill.opportunity_id,
            }
            async with self._gate:
                try:
                    return PostOutcome(
                        key=bill.external_id, record_id=await self._ns.upsert("timeBill", bill.external_id, body)
                    )
                except PER_RECORD as error:
                    return PostOutcome(
                        key=bill.external_id, error_code=error.vendor_code or type(error).__name__, error=str(error)
                    )

        return list(await asyncio.gather(*(one(b) for b in bills)))

    async def journal_sources(self, external_id: str) -> list[str] | None:
        """The PSA records an already-posted batch journal covers; None if it does not exist."""
        record = await self._ns.get_by_external_id("journalEntry", external_id)
        if record is None:
            return None
        items = (record.get("line") or {}).get("items", [])
        return sorted({str(i["custcol_d2r_source_id"]) for i in items if i.get("custcol_d2r_source_id")})

    async def post_journal(self, journal: PostingJournal) -> PostOutcome:
        lines = []
        for line in journal.lines:
            entry: dict[str, Any] = {
                "account": default_account_map(line.account),
                "memo": line.memo[:4000],
                "custcol_d2r_source_id": line.source_id,
                "custcol_d2r_project_id": line.project_id,
            }
            if line.debit is not None:
                entry["debit"] = line.debit
            if line.credit is not None:
                entry["credit"] = line.credit
            lines.append(entry)
        body = {
            "subsidiary": {"externalId": journal.legal_entity},
            "currency": {"refName": journal.currency},
            "tranDate": journal.tran_date.isoformat(),
            "memo": journal.memo[:200],
            "approved": True,
            "custbody_d2r_journal_entry_id": journal.external_id,
            "line": {"items": lines},
        }
        async with self._gate:
            try:
                return PostOutcome(
                    key=journal.external_id, record_id=await self._ns.upsert("journalEntry", journal.external_id, body)
                )
            except PER_RECORD as error:
                return PostOutcome(
                    key=journal.external_id, error_code=error.vendor_code or type(error).__name__, error=str(error)
                )

    async def lock_period(self, period: str, legal_entity: str | None = None) -> bool:
        """Lock the accounting period (externalId "2026-11") for the legal entity's subsidiary
        (OneWorld: the other subsidiaries of the account close on their own), or for every
        posting without one. True if this call locked it, False if it was locked already.
        Safe to repeat."""
        subsidiary = await self._subsidiary_id(legal_entity) if legal_entity else None
        for _ in range(5):
            record = await self._ns.get_by_external_id("accountingPeriod", period)
            if record is None:
                raise NotFoundError(
                    f"accounting period {period} does not exist",
                    system=SYSTEM,
                    status=404,
                    vendor_code="NONEXISTENT_ID",
                )
            if record.get("allLocked") or record.get("isLocked") or record.get("closed"):
                return False
            if subsidiary is None:
                await self._ns.patch("accountingPeriod", str(record["id"]), {"allLocked": True})
                return True
            locked = [s for s in str(record.get(SUBSIDIARY_LOCKS) or "").split(",") if s]
            if subsidiary in locked:
                return False
            await self._ns.patch(
                "accountingPeriod", str(record["id"]), {SUBSIDIARY_LOCKS: ",".join([*locked, subsidiary])}
            )
            # Two entities' closes may write the list at once: read it back until ours is in.
            again = await self._ns.get("accountingPeriod", str(record["id"]))
            if subsidiary in str(again.get(SUBSIDIARY_LOCKS) or "").split(","):
                return True
        raise NotFoundError(
            f"could not lock {period} for {legal_entity}", system=SYSTEM, status=409, vendor_code="CONCURRENT_UPDATE"
        )

    async def _subsidiary_id(self, legal_entity: str) -> str:
        found = await self._ns.subsidiary_id(legal_entity)
        if found is not None:
            return found
        raise NotFoundError(
            f"no subsidiary {legal_entity} in the ERP", system=SYSTEM, status=404, vendor_code="NONEXISTENT_ID"
        )
