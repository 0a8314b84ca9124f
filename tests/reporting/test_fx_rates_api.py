"""GET /v1/fx-rates: the dated rates stored in the hub, the ones its loaders convert with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from reporting.hub import ReportingHub
from tests.reporting import dataset
from tests.reporting.conftest import make_app

FIN = {"Authorization": "Bearer dev-finance"}


@pytest.fixture
async def api(hub: ReportingHub) -> AsyncIterator[httpx.AsyncClient]:
    await dataset.load(hub)  # GBP->USD 1.25 from 2026-01-01, 1.30 from 2026-02-01
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(hub)), base_url="http://t") as c:
        yield c


async def test_rates_are_listed_and_the_one_in_force_matches_what_facts_used(
    api: httpx.AsyncClient, hub: ReportingHub
) -> None:
    r = await api.get("/v1/fx-rates", headers=FIN)
    assert r.status_code == 200, r.text
    assert [(x["from_currency"], x["to_currency"], x["rate_date"], x["rate"]) for x in r.json()["rates"]] == [
        ("GBP", "USD", "2026-02-01", "1.3"),
        ("GBP", "USD", "2026-01-01", "1.25"),
    ]
    jan = (await api.get("/v1/fx-rates", headers=FIN, params={"on": "2026-01-31", "from": "GBP"})).json()
    assert [(x["rate_date"], x["rate"]) for x in jan["rates"]] == [("2026-01-01", "1.25")]
    # invoice I2 (2026-02-05) was converted at the rate served for its date: 1.30
    served = (await api.get("/v1/fx-rates", headers=FIN, params={"on": "2026-02-05"})).json()["rates"][0]["rate"]
    used = await hub.pool.fetchval("SELECT fx_rate_reporting FROM fact_invoice WHERE source_record_id = 'I2'")
    assert used == Decimal(served)
    before = (await api.get("/v1/fx-rates", headers=FIN, params={"on": "2025-12-31"})).json()
    assert before["rates"] == []
    assert (await api.get("/v1/fx-rates", headers=FIN, params={"from": "gbp"})).status_code == 422
    assert (await api.get("/v1/fx-rates")).status_code == 401
