"""FX rates from the ERPs' currency-rate records, on real activities: the NetSuite and D365
simulators in process (ASGI), the embedded PostgreSQL hub, a time-skipping Temporal server
running FxSyncWorkflow (one activity per page), and GET /v1/fx-rates on the hub.

Figures: NetSuite holds EUR→USD 1.08 from 1 Jan 2026 (its seed) and 1.10 from 2 Nov 2026
(added here); a EUR 1,000.00 booking of a USD entity on 15 Nov converts at 1.10 to
USD 1,100.00, one on 15 Oct at 1.08 to USD 1,080.00. JPY 100,000 on 15 Nov for a EUR
entity crosses through USD: 100,000 / 150 / 1.10 = 606.0606… → EUR 606.06.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.fx import FxSyncActivities
from activities.reporting import load_reference_data
from connectors.dynamics import erp_connection as d365_connection
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter
from contracts.fx import FxSyncInput, FxSyncResult, fx_sync_workflow_id
from contracts.queues import TaskQueues
from domain.reference_data import default_fx_rates, default_legal_entities
from reporting import models as m
from reporting.hub import ReportingHub
from reporting.loaders import MissingFxRateError
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.connectors.conftest import NetSuite, make_netsuite
from tests.connectors.test_dynamics_erp import D365, make_d365
from tests.reporting.conftest import make_app
from workflows.fx_sync import FxSyncWorkflow

FINANCE = {"Authorization": "Bearer dev-finance"}


@dataclass
class World:
    env: WorkflowEnvironment
    hub: ReportingHub
    ns: NetSuite
    d365: D365
    queue: str

    async def sync(self, run: str, page_size: int = 2, since: date | None = None) -> FxSyncResult:
        return await self.env.client.execute_workflow(
            FxSyncWorkflow.run,
            FxSyncInput(queues=TaskQueues(erp=self.queue), page_size=page_size, since=since),
            id=f"{fx_sync_workflow_id('2026-11-30')}-{run}",
            task_queue=self.queue,
        )


@pytest.fixture
async def world(tmp_path: Path, hub: ReportingHub) -> AsyncIterator[World]:
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    await hub.upsert_dimensions([m.LegalEntityDim(legal_entity="DE9", functional_currency="EUR")])
    ns = await make_netsuite(tmp_path)
    d365 = await make_d365(tmp_path)
    usd = (await ns.client.get_by_external_id("currency", "USD")) or {}
    eur = (await ns.client.get_by_external_id("currency", "EUR")) or {}
    await ns.client.create(
        "currencyRate",
        {"baseCurrency": {"id": usd["id"]}, "transactionCurrency": {"id": eur["id"]}, "exchangeRate": 1.1,
         "effectiveDate": "2026-11-02"},
    )  # fmt: skip
    router = ErpRouter(
        {"erp-a": erp_connection(ns.client), "erp-b": d365_connection(d365.client)}, {"UK01": "erp-b"}, "erp-a"
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    queue = f"fx-{uuid.uuid4().hex[:6]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[FxSyncWorkflow], activities=[FxSyncActivities(router, hub).sync_page]
    ):
        yield World(env, hub, ns, d365, queue)
    await env.shutdown()
    for sim in (ns, d365):
        await sim.client.aclose()
        await sim.admin.aclose()
        sim.admin.app.store.close()


def booking(record: str, on: date, amount: str, currency: str, entity: str = "US01") -> m.BookingFact:
    return m.BookingFact(
        source_system="crm",
        source_record_id=record,
        customer_id="ACME",
        legal_entity=entity,
        currency=currency,
        booking_date=on,
        amount=D(amount),
    )


async def test_the_daily_sync_pages_both_erps_rates_into_the_hub_idempotently(world: World) -> None:
    first = await world.sync("1")
    p = first.progress
    # NetSuite: 4 records, 2 a page (2 full pages, then an empty one); D365: 3 records (a full
    # page of 2, then 1): 5 pages, one activity each.
    assert p.instances == ["erp-a", "erp-b"] and p.read == 7 and p.pages == 5
    # four (pair, day) rows; D365 quotes the three seeded ones at the same rates: kept as they are
    assert p.stored == 4
    again = await world.sync("2", since=date(2025, 1, 1))
    assert again.progress.read == 7 and again.progress.stored == 0  # nothing changed: nothing written
    # without `since`, each ERP is read from a week before its newest synced rate
    daily = await world.sync("3")
    assert daily.progress.read == 1 + 3 and daily.progress.stored == 0

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(world.hub)), base_url="http://t") as api:
        response = await api.get("/v1/fx-rates", params={"from": "EUR", "to": "USD"}, headers=FINANCE)
        assert response.status_code == 200, response.text
        rates = response.json()["rates"]
        assert [(r["rate_date"], r["rate"]) for r in rates] == [("2026-11-02", "1.1"), ("2026-01-01", "1.08")]
        newest = rates[0]
        assert newest["source_system"] == "netsuite:default" and newest["source_record_id"]
        assert newest["synced_at"]
        # the rate in force on a day, per pair
        on = await api.get("/v1/fx-rates", params={"on": "2026-11-15"}, headers=FINANCE)
        in_force = {(r["from_currency"], r["to_currency"]): r for r in on.json()["rates"]}
        assert in_force["EUR", "USD"]["rate"] == "1.1" and in_force["USD", "JPY"]["rate"] == "150"
        # every synced rate names its ERP, none the reference data any more (same pairs and day)
        assert {r["source_system"] for r in in_force.values()} == {"netsuite:default"}

    # The reference data never replaces an ERP's rate (workers load it at every start).
    await load_reference_data(world.hub, default_legal_entities(), default_fx_rates())
    source = await world.hub.pool.fetchval(
        "SELECT source_system FROM fx_rate WHERE from_currency = 'EUR' AND rate_date = '2026-01-01'"
    )
    assert source != m.REFERENCE_RATES

    # Facts convert at the synced rate of their own day.
    await world.hub.record_booking(
        booking("B-NOV", date(2026, 11, 15), "1000.00", "EUR"),
        booking("B-OCT", date(2026, 10, 15), "1000.00", "EUR"),
        booking("B-JPY", date(2026, 11, 15), "100000", "JPY", entity="DE9"),
    )
    rows = {
        r["source_record_id"]: r
        for r in await world.hub.pool.fetch("SELECT * FROM fact_booking WHERE source_record_id LIKE 'B-%'")
    }
    assert rows["B-NOV"]["reporting_amount"] == D("1100.00") and rows["B-NOV"]["fx_rate_reporting"] == D("1.1")
    assert rows["B-OCT"]["reporting_amount"] == D("1080.00")
    assert rows["B-JPY"]["functional_amount"] == D("606.06")  # JPY -> USD -> EUR through the pivot


async def test_a_missing_rate_is_a_visible_exception_until_the_erp_has_it(world: World) -> None:
    await world.sync("1")
    with pytest.raises(MissingFxRateError):
        await world.hub.record_booking(booking("B-CHF", date(2026, 11, 20), "500.00", "CHF"))
    [exc] = await world.hub.list_exceptions(kind="fx.missing_rate")
    assert exc["detail"]["from"] == "CHF" and exc["detail"]["to"] == "USD" and exc["detail"]["on"] == "2026-11-20"
    assert "CHF/USD" in exc["error_message"]
    assert await world.hub.pool.fetchval("SELECT count(*) FROM fact_booking WHERE source_record_id = 'B-CHF'") == 0

    # Treasury enters the CHF rate in D365; the next sync brings it and answers the exception.
    await world.d365.client.create(
        "ExchangeRates",
        {"RateTypeName": "Default", "FromCurrency": "CHF", "ToCurrency": "USD", "StartDate": "2026-11-01T12:00:00Z",
         "Rate": 1.12},
    )  # fmt: skip
    await world.sync("2")
    assert await world.hub.list_exceptions(kind="fx.missing_rate") == []
    await world.hub.record_booking(booking("B-CHF", date(2026, 11, 20), "500.00", "CHF"))
    amount = await world.hub.pool.fetchval("SELECT reporting_amount FROM fact_booking WHERE source_record_id = 'B-CHF'")
    assert amount == D("560.00")  # 500 x 1.12
