"""The rates an engagement converts at: the reporting hub's, for the days it converts on.

The hub converts every fact at the rate its one rule picks for the fact's date (the ERPs'
synced rates, the reference data only where an ERP has none; migration 0018). An engagement
that converted at the reference file's rates would show other reporting and functional
figures than the hub wherever an ERP rate differs. So before a period run or an amendment,
the engagement dry-runs the (pure) computation to learn which conversions it makes, asks
the hub for exactly those in one activity, and then computes with the hub's answers. Where
the hub has no rate at all — or there is no hub — the reference file's rates answer, by the
same rule, as the hub would from them.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.fx import FxRatesInput, FxRatesResult
    from domain.fx import FxRateTable, conversions_asked
    from workflows.engagement_support import EngagementBase


class FxSteps(EngagementBase):
    async def _hub_rates(self, table: FxRateTable, compute: Callable[[FxRateTable], object], why: str) -> FxRateTable:
        """`table` with the hub's rate for every conversion `compute` makes that it has not
        been given yet; one activity, none when the engagement converts nothing."""
        queue = self._input.queues.reporting
        if queue is None:
            return table
        given = {(c.base, c.quote, c.on) for c in table.chosen}
        asked = [c for c in conversions_asked(compute, table) if (c.base, c.quote, c.on) not in given]
        if not asked:
            return table
        found: FxRatesResult = await self._call(
            "fx.rates_on", FxRatesInput(conversions=asked), FxRatesResult, queue, f"Hub FX rates for {why}"
        )
        if found.missing:
            self._note(
                f"{why}: the hub has no rate for "
                + ", ".join(f"{c.base}/{c.quote} on {c.on}" for c in found.missing[:3])
                + (" and more" if len(found.missing) > 3 else "")
                + "; converted at the reference rates"
            )
        return table.model_copy(update={"chosen": [*table.chosen, *found.rates]})
