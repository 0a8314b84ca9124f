"""Source sync activities: curated PSA and ERP totals per project and period, staged in the
reporting hub a page at a time and committed at the end as the complete extract.

Each extraction activity runs on its system's task queue (PSA pages on the PSA queue, ERP
pages on the ERP queue), reads through the connectors (SOQL `nextRecordsUrl` / SuiteQL
limit-offset paging, `IN` chunks) and writes only to the hub's stage under the sync run's key
and its own part name, so a retried page replaces what it staged before. `sync.commit`
replaces the hub's source totals from the stage in one transaction. Without a hub on the
worker every activity answers `skipped`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, Protocol

from temporalio import activity

from activities.errors import translating_errors
from activities.heartbeats import heartbeating
from connectors.ports import CrmExtractPort, ErpExtractPort, PsaExtractPort
from connectors.routing import ErpRouter, PsaRouter
from contracts.ids import posting_run_prefix
from contracts.source_sync import (
    SyncCommitInput,
    SyncCommitResult,
    SyncCrmInput,
    SyncCrmResult,
    SyncErpEntityInput,
    SyncErpResult,
    SyncErpTimePageInput,
    SyncPsaPageInput,
    SyncPsaPageResult,
    SyncReconcileInput,
    SyncReconcileResult,
)
from domain.extracts import ProjectTotal
from domain.periods import period_end, period_start
from reporting.models import SourceTotals


class SourceTotalsStore(Protocol):
    """The hub operations the sync needs (`reporting.hub.ReportingHub` provides them)."""

    async def stage_source_totals(self, sync_key: str, part: str, totals: Sequence[SourceTotals]) -> int: ...

    async def commit_staged_source_totals(
        self,
        sync_key: str,
        legal_entity: str,
        period: str,
        sources: Sequence[str] = ("psa", "erp"),
        max_record_ids: int = 50,
    ) -> dict[str, int]: ...

    async def reconcile(self, period: str, legal_entity: str) -> dict[str, Any]: ...


def _source_totals(
    source: Literal["psa", "erp", "crm"], legal_entity: str, period: str, totals: Sequence[ProjectTotal]
) -> list[SourceTotals]:
    return [
        SourceTotals(
            source_system=source,
            legal_entity=legal_entity,
            project_id=t.project_id,
            period=period,
            hours=None if source == "crm" else t.hours,
            time_amount=t.time_amount,
            invoice_total=t.invoice_total,
            booking_total=t.booking_total,
            currency=t.currency,
            record_ids=t.record_ids,
        )
        for t in totals
    ]


class SourceSyncActivities:
    def __init__(
        self,
        psa: PsaRouter,
        erp: ErpRouter,
        hub: SourceTotalsStore | None = None,
        crm: CrmExtractPort | None = None,
    ) -> None:
        self._crm = crm
        self._psas = psa
        self._erps = erp
        self._hub = hub

    def _psa(self, legal_entity: str) -> PsaExtractPort:
        return self._psas.for_entity(legal_entity).extract

    def _entity_erp(self, legal_entity: str) -> ErpExtractPort:
        return self._erps.for_entity(legal_entity).extract

    def _every_erp(self) -> list[ErpExtractPort]:
        return [c.extract for c in self._erps.all()]

    @activity.defn(name="sync.psa_page")
    @translating_errors
    async def psa_page(self, data: SyncPsaPageInput) -> SyncPsaPageResult:
        if self._hub is None:
            return SyncPsaPageResult(skipped=True)
        projects = await self._psa(data.legal_entity).projects(
            data.legal_entity, data.after_project, data.projects_per_page
        )
        totals = (
            await self._psa(data.legal_entity).approved_time(
                projects, period_start(data.period), period_end(data.period)
            )
            if projects
            else []
        )
        await self._hub.stage_source_totals(
            data.sync_key, f"psa:p{data.page}", _source_totals("psa", data.legal_entity, data.period, totals)
        )
        return SyncPsaPageResult(
            project_ids=[p.project_id for p in projects],
            next_project=projects[-1].project_id if len(projects) == data.projects_per_page else None,
            projects_with_time=len(totals),
            hours=sum((t.hours for t in totals), Decimal(0)),
            time_amount=sum((t.time_amount or Decimal(0) for t in totals), Decimal(0)),
            records=sum(t.records for t in totals),
        )

    @activity.defn(name="sync.erp_time_page")
    @translating_errors
    async def erp_time_page(self, data: SyncErpTimePageInput) -> SyncErpResult:
        """Time bills of one page of the entity's projects, from every ERP instance (a
        consultant's time goes to the instance of the entity employing them that day)."""
        if self._hub is None:
            return SyncErpResult(skipped=True)
        start, end = period_start(data.period), period_end(data.period)
        merged = _merge(
            await asyncio.gather(*(erp.time_bills(data.project_ids, start, end) for erp in self._every_erp()))
        )
        await self._hub.stage_source_totals(
            data.sync_key, f"erp:tb:p{data.page}", _source_totals("erp", data.legal_entity, data.period, merged)
        )
        return SyncErpResult(
            projects=len(merged),
            hours=sum((t.hours for t in merged), Decimal(0)),
            records=sum(t.records for t in merged),
        )

    @activity.defn(name="sync.erp_entity")
    @translating_errors
    async def erp_entity(self, data: SyncErpEntityInput) -> SyncErpResult:
        """The entity's posting journals' time lines (every instance) and its invoices (its
        own instance) for the period."""
        if self._hub is None:
            return SyncErpResult(skipped=True)
        start, end = period_start(data.period), period_end(data.period)
        async with heartbeating(5.0):
            read = await asyncio.gather(
                *(
                    erp.time_journal_lines(posting_run_prefix(data.legal_entity), start, end)
                    for erp in self._every_erp()
                )
            )
            journals = _merge([totals for _, totals in read])
            invoices = await self._entity_erp(data.legal_entity).invoices(data.legal_entity, start, end)
        await self._hub.stage_source_totals(
            data.sync_key, "erp:je", _source_totals("erp", data.legal_entity, data.period, journals)
        )
        await self._hub.stage_source_totals(
            data.sync_key, "erp:inv", _source_totals("erp", data.legal_entity, data.period, invoices)
        )
        by_currency: dict[str, Decimal] = {}
        for inv in invoices:
            key = inv.currency or "?"
            by_currency[key] = by_currency.get(key, Decimal(0)) + (inv.invoice_total or Decimal(0))
        return SyncErpResult(
            projects=len({t.project_id for t in (*journals, *invoices)}),
            hours=sum((t.hours for t in journals), Decimal(0)),
            records=sum(t.records for t in journals),
            journals=sum(n for n, _ in read),
            invoice_totals=by_currency,
            invoices=sum(t.records for t in invoices),
        )

    @activity.defn(name="sync.crm_bookings")
    @translating_errors
    async def crm_bookings(self, data: SyncCrmInput) -> SyncCrmResult:
        """The CRM's closed-won deals of the entity in the period, per provisioned project."""
        if self._hub is None or self._crm is None:
            return SyncCrmResult(skipped=True)
        found = await self._crm.bookings(data.legal_entity, period_start(data.period), period_end(data.period))
        await self._hub.stage_source_totals(
            data.sync_key, "crm:bookings", _source_totals("crm", data.legal_entity, data.period, found.totals)
        )
        by_currency: dict[str, Decimal] = {}
        for t in found.totals:
            by_currency[t.currency or "?"] = by_currency.get(t.currency or "?", Decimal(0)) + (t.booking_total or 0)
        return SyncCrmResult(projects=len(found.totals), booking_totals=by_currency, unlinked=found.unlinked)

    @activity.defn(name="sync.commit")
    async def commit(self, data: SyncCommitInput) -> SyncCommitResult:
        if self._hub is None:
            return SyncCommitResult(skipped=True)
        written = await self._hub.commit_staged_source_totals(data.sync_key, data.legal_entity, data.period)
        return SyncCommitResult(projects=written)

    @activity.defn(name="sync.reconcile")
    async def reconcile(self, data: SyncReconcileInput) -> SyncReconcileResult:
        if self._hub is None:
            return SyncReconcileResult(status="skipped")
        report = await self._hub.reconcile(data.period, data.legal_entity)
        differences = report.get("differences") or []
        by_metric: dict[str, int] = {}
        for d in differences:
            by_metric[d["metric"]] = by_metric.get(d["metric"], 0) + 1
        return SyncReconcileResult(
            status=report["status"],  # "nothing_to_reconcile" when no project was compared
            run_id=report.get("run_id"),
            projects_checked=report.get("projects_checked", 0),
            differences=len(differences),
            by_metric=by_metric,
        )


def _merge(parts: Sequence[Sequence[ProjectTotal]]) -> list[ProjectTotal]:
    """Totals of several instances per project."""
    out: dict[str, ProjectTotal] = {}
    for part in parts:
        for t in part:
            if t.project_id not in out:
                out[t.project_id] = t.model_copy(deep=True)
                continue
            m = out[t.project_id]
            m.hours += t.hours
            m.records += t.records
            m.record_ids += t.record_ids
            if t.invoice_total is not None:
                m.invoice_total = (m.invoice_total or Decimal(0)) + t.invoice_total
            m.currency = m.currency or t.currency
    return [out[k].finish() for k in sorted(out)]
