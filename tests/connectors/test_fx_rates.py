"""The ERPs' currency-rate records read through the connectors' FX port, against the
simulators in process: NetSuite's `currencyRate` (SuiteQL `currencyrate`, rates against
each base currency) and D365's `ExchangeRates` entity (rates quoted per conversion factor)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.dynamics.fx import DynamicsFxRates
from connectors.netsuite.fx import NetSuiteFxRates
from domain.fx import FxRate
from tests.connectors.conftest import NetSuite, make_netsuite
from tests.connectors.test_dynamics_erp import D365, make_d365

SINCE = date(2025, 1, 1)


def pairs(rates: list[FxRate]) -> set[tuple[str, str, Decimal, date]]:
    return {(r.base, r.quote, r.rate, r.as_of) for r in rates}


async def all_pages(port: NetSuiteFxRates | DynamicsFxRates, since: date, limit: int) -> tuple[list[FxRate], int]:
    rates: list[FxRate] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await port.rates(since, cursor, limit)
        pages += 1
        rates += page.rates
        if page.cursor is None:
            return rates, pages
        cursor = page.cursor


@pytest.fixture
async def netsuite(tmp_path: Path) -> AsyncIterator[NetSuite]:
    made = await make_netsuite(tmp_path)
    yield made
    await made.client.aclose()
    await made.admin.aclose()
    made.admin.app.store.close()


@pytest.fixture
async def d365(tmp_path: Path) -> AsyncIterator[D365]:
    made = await make_d365(tmp_path)
    yield made
    await made.client.aclose()
    await made.admin.aclose()
    made.admin.app.store.close()


async def test_netsuite_currency_rates_page_by_id_and_read_as_foreign_to_base(netsuite: NetSuite) -> None:
    # A later EUR rate against the USD base, created as a firm's treasury would (REST record).
    usd = (await netsuite.client.get_by_external_id("currency", "USD")) or {}
    eur = (await netsuite.client.get_by_external_id("currency", "EUR")) or {}
    await netsuite.client.create(
        "currencyRate",
        {
            "baseCurrency": {"id": usd["id"]},
            "transactionCurrency": {"id": eur["id"]},
            "exchangeRate": 1.1,
            "effectiveDate": "2026-11-02",
        },
    )
    port = NetSuiteFxRates(netsuite.client)
    rates, pages = await all_pages(port, SINCE, limit=2)
    assert pages == 3  # 4 records, 2 a page: two full pages, then an empty one ends it
    assert pairs(rates) == {
        ("EUR", "USD", Decimal("1.08"), date(2026, 1, 1)),
        ("GBP", "USD", Decimal("1.27"), date(2026, 1, 1)),
        ("USD", "JPY", Decimal("150"), date(2026, 1, 1)),  # JPY base (JP01's subsidiary)
        ("EUR", "USD", Decimal("1.1"), date(2026, 11, 2)),
    }
    assert all(r.source == "netsuite:default" and r.record_id for r in rates)
    # only rates effective on or after `since`
    later, _ = await all_pages(port, date(2026, 6, 1), limit=10)
    assert pairs(later) == {("EUR", "USD", Decimal("1.1"), date(2026, 11, 2))}


async def test_d365_exchange_rates_divide_by_the_conversion_factor(d365: D365) -> None:
    # 100 JPY = 0.62 EUR from 1 Nov 2026, quoted per hundred as D365 users do for JPY.
    await d365.client.create(
        "ExchangeRates",
        {
            "RateTypeName": "Default",
            "FromCurrency": "JPY",
            "ToCurrency": "EUR",
            "StartDate": "2026-11-01T12:00:00Z",
            "Rate": 0.62,
            "ConversionFactor": "Hundred",
        },
    )
    # another rate type is not the ledger's default: left out
    await d365.client.create(
        "ExchangeRates",
        {"RateTypeName": "Budget", "FromCurrency": "EUR", "ToCurrency": "USD", "StartDate": "2026-11-01T12:00:00Z",
         "Rate": 1.5},
    )  # fmt: skip
    port = DynamicsFxRates(d365.client)
    rates, pages = await all_pages(port, SINCE, limit=3)
    assert pages == 2
    assert pairs(rates) == {
        ("EUR", "USD", Decimal("1.08"), date(2026, 1, 1)),
        ("GBP", "USD", Decimal("1.27"), date(2026, 1, 1)),
        ("USD", "JPY", Decimal("150"), date(2026, 1, 1)),
        ("JPY", "EUR", Decimal("0.0062"), date(2026, 11, 1)),
    }
    assert {r.record_id for r in rates} >= {"Default/JPY/EUR/2026-11-01"}
    assert all(r.source == f"dynamics:{d365.client.config.instance}" for r in rates)
