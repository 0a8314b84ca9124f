"""FX-rate activities. The sync: one page of an ERP instance's currency-rate records, read
through its FX port and stored in the hub, per call (idempotent: a repeated page stores
nothing new), on the ERP queue under the ERP's limits. The lookup: the rates the hub's
loaders use for an engagement's conversions, on the reporting queue (a read)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Protocol

from temporalio import activity

from activities.errors import translating_errors
from connectors.routing import ErpRouter
from contracts.fx import (
    FX_SYNC_LOOKBACK_DAYS,
    FxCursor,
    FxRatesInput,
    FxRatesResult,
    FxSyncPageInput,
    FxSyncPageResult,
)
from domain.fx import ChosenRate
from reporting import models as m

EARLIEST = date(2000, 1, 1)


class FxRateStore(Protocol):
    """The hub operations the sync needs (`reporting.hub.ReportingHub` provides them)."""

    async def record_fx_rates(self, rates: list[m.FxRate]) -> int: ...

    async def newest_fx_rate_date(self, source_system: str) -> date | None: ...


class FxSyncActivities:
    def __init__(self, router: ErpRouter, hub: FxRateStore | None) -> None:
        self._router = router
        self._hub = hub

    @activity.defn(name="fx.sync_page")
    @translating_errors
    async def sync_page(self, data: FxSyncPageInput) -> FxSyncPageResult:
        names = self._router.names()
        if self._hub is None:
            return FxSyncPageResult(skipped="no reporting hub is configured on the ERP workers")
        if not names:
            return FxSyncPageResult(skipped="no ERP instance is configured")
        cursor = data.cursor if data.cursor.instance in names else FxCursor(instance=names[0])
        instance = cursor.instance or names[0]
        port = self._router.instance(instance).fx
        result = FxSyncPageResult(instance=instance)
        if port is None:
            result.skipped = f"ERP instance {instance} keeps no currency-rate records"
            result.next = self._after(names, instance)
            return result
        since = cursor.since or data.since or await self._since(port.source)
        page = await port.rates(since, cursor.position, data.page_size)
        result.read = page.read
        result.stored = await self._hub.record_fx_rates(
            [
                m.FxRate(
                    from_currency=r.base,
                    to_currency=r.quote,
                    rate_date=r.as_of,
                    rate=r.rate,
                    source_system=r.source,
                    source_record_id=r.record_id,
                )
                for r in page.rates
            ]
        )
        result.next = (
            FxCursor(instance=instance, position=page.cursor, since=since)
            if page.cursor is not None
            else self._after(names, instance)
        )
        return result

    async def _since(self, source: str) -> date:
        assert self._hub is not None
        newest = await self._hub.newest_fx_rate_date(source)
        return newest - timedelta(days=FX_SYNC_LOOKBACK_DAYS) if newest else EARLIEST

    @staticmethod
    def _after(names: list[str], instance: str) -> FxCursor | None:
        at = names.index(instance)
        return FxCursor(instance=names[at + 1]) if at + 1 < len(names) else None


class ChosenRateSource(Protocol):
    """The hub's rate rule (`reporting.hub.ReportingHub.chosen_fx_rates`)."""

    async def chosen_fx_rates(self, lookups: list[tuple[str, str, date]]) -> list[dict[str, Any]]: ...


class FxLookupActivities:
    def __init__(self, hub: ChosenRateSource) -> None:
        self._hub = hub

    @activity.defn(name="fx.rates_on")
    @translating_errors
    async def rates_on(self, data: FxRatesInput) -> FxRatesResult:
        """The hub's rate for each conversion, chosen by the rule its loaders convert facts
        with, so the engagement's figures and the hub's agree; the ones it has no rate for
        come back as `missing`."""
        rows = await self._hub.chosen_fx_rates([(c.base, c.quote, c.on) for c in data.conversions])
        rates = [
            ChosenRate(
                base=r["from_currency"].strip(),
                quote=r["to_currency"].strip(),
                on=r["on_date"],
                rate=r["rate"],
                rate_date=r["rate_date"],
                source=r["source_system"],
                via=r["via"].strip() if r["via"] else None,
            )
            for r in rows
        ]
        found = {(r.base, r.quote, r.on) for r in rates}
        return FxRatesResult(rates=rates, missing=[c for c in data.conversions if (c.base, c.quote, c.on) not in found])
