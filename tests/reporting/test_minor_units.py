"""Functional and reporting amounts in the currency's minor unit, rounded per fact at the
fact's dated rate; the rows of a report add up to its total exactly (docs/reporting.md,
"Rounding"). Worked examples with a 0-decimal (JPY) and a 3-decimal (KWD, BHD) currency,
each way round, through the loaders, the KPI queries and the HTTP API; then a property
test over random facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.money import quantum
from reporting import models as m
from reporting.hub import ReportingHub
from reporting.kpis import KpiQuery
from tests.reporting.conftest import make_app

JAN = date(2026, 1, 1)
ENTITIES = [
    m.LegalEntityDim(legal_entity="US1", functional_currency="USD"),
    m.LegalEntityDim(legal_entity="JP1", functional_currency="JPY"),
    m.LegalEntityDim(legal_entity="KW1", functional_currency="KWD"),
    m.LegalEntityDim(legal_entity="BH1", functional_currency="BHD"),
]
# The defect's rate: 1 JPY = 0.0066666667 USD (150 JPY/USD), and a direct USD->JPY 150.
RATES = {
    ("JPY", "USD"): D("0.0066666667"),
    ("USD", "JPY"): D("150"),
    ("USD", "KWD"): D("0.3071"),
    ("KWD", "USD"): D("3.2563"),
    ("BHD", "USD"): D("2.6596"),
    ("KWD", "JPY"): D("488.4"),
    ("JPY", "KWD"): D("0.0020475"),
}
FX = [m.FxRate(from_currency=f, to_currency=t, rate_date=JAN, rate=r) for (f, t), r in RATES.items()]
CURRENCY = {e.legal_entity: e.functional_currency for e in ENTITIES}


async def setup(hub: ReportingHub) -> None:
    await hub.upsert_dimensions(ENTITIES)
    await hub.upsert_dimensions([m.CustomerDim(customer_id="C")])
    await hub.upsert_dimensions(FX)


def revenue(rid: str, entity: str, project: str, amount: str, day: date, currency: str | None = None) -> m.RevenueFact:
    return m.RevenueFact(
        source_system="erp",
        source_record_id=rid,
        customer_id="C",
        project_id=project,
        legal_entity=entity,
        currency=currency or CURRENCY[entity],
        revenue_date=day,
        amount=D(amount),
    )


async def kpi(hub: ReportingHub, name: str, **kw: Any) -> dict[tuple[str, str], Decimal]:
    result = await hub.kpi(name, KpiQuery(**kw))
    return {(r["key"], r["currency"]): r["value"] for r in result.rows}


async def test_jpy_in_usd_rounds_per_fact_and_rows_add_up(hub: ReportingHub) -> None:
    """340,000 JPY at 0.0066666667 = 2,266.666678 USD -> 2,266.67 (was 2,266.666678).

    Three more facts of 100,000 JPY: 666.66667 -> 666.67 each. Revenue total
    2,266.67 + 3 x 666.67 = 4,266.68; by project PJ 2,266.67 + 2 x 666.67 = 3,600.01 and
    PJ2 666.67, which add up to 4,266.68. (Converting the JPY sum, 640,000 JPY, would give
    4,266.67: the 0.01 is the rounding of the facts and stays in them; it is never
    re-allocated, so no row changes when another fact arrives.)
    """
    await setup(hub)
    d = date(2026, 1, 31)
    await hub.record_revenue(
        [
            revenue("R1", "JP1", "PJ", "340000", d),
            revenue("R2", "JP1", "PJ", "100000", d),
            revenue("R3", "JP1", "PJ", "100000", d),
            revenue("R4", "JP1", "PJ2", "100000", d),
        ]
    )
    row = await hub.pool.fetchrow("SELECT * FROM fact_revenue WHERE source_record_id = 'R1'")
    assert row["fx_rate_reporting"] == D("0.0066666667")
    assert str(row["reporting_amount"]) == "2266.6700"  # numeric(24,4); cents only
    assert row["functional_amount"] == D("340000")
    assert await kpi(hub, "revenue") == {("all", "USD"): D("4266.68")}
    assert await kpi(hub, "revenue", group_by="project") == {("PJ", "USD"): D("3600.01"), ("PJ2", "USD"): D("666.67")}
    assert await kpi(hub, "revenue", currency="functional") == {("all", "JPY"): D("640000")}


async def test_jpy_invoice_tax_takes_the_rounding_difference_and_aging_rounds_per_invoice(hub: ReportingHub) -> None:
    """Invoice 340,000 JPY net + 34,000 tax = 374,000 JPY.

    Net 2,266.666678 -> 2,266.67 USD; total 2,493.3333458 -> 2,493.33; tax = 2,493.33 -
    2,266.67 = 226.66 (alone it would round to 226.67): net + tax = total in USD too.
    A payment of 100,001 JPY leaves 273,999 JPY open: x 0.0066666667 = 1,826.6600091
    -> 1,826.66 USD in the 1-30 days bucket, and the buckets add up to the value.
    """
    await setup(hub)
    base = dict(source_system="erp", customer_id="C", project_id="PJ", legal_entity="JP1", currency="JPY")
    await hub.record_invoice(
        m.InvoiceFact(
            **base,
            source_record_id="INV1",
            invoice_date=date(2026, 1, 10),
            due_date=date(2026, 2, 9),
            net_amount=D("340000"),
            tax_amount=D("34000"),
            total_amount=D("374000"),
        )
    )
    await hub.record_payment(
        m.PaymentFact(
            **base, source_record_id="PAY1", payment_date=date(2026, 2, 1), invoice_id="INV1", amount=D(100001)
        )
    )
    inv = await hub.pool.fetchrow("SELECT * FROM fact_invoice WHERE source_record_id = 'INV1'")
    net, tax, total = (inv[f"reporting_{c}_amount"] for c in ("net", "tax", "total"))
    assert (net, tax, total) == (D("2266.67"), D("226.66"), D("2493.33"))
    assert net + tax == total
    assert (inv["functional_net_amount"], inv["functional_tax_amount"]) == (D(340000), D(34000))
    assert await kpi(hub, "billed_revenue") == {("all", "USD"): D("2266.67")}
    aging = (await hub.kpi("ar_aging", KpiQuery(as_of=date(2026, 2, 20)))).rows
    assert len(aging) == 1
    assert aging[0]["days_1_30"] == aging[0]["value"] == D("1826.66")
    buckets = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")
    assert sum(aging[0][b] for b in buckets) == aging[0]["value"]


async def test_usd_reported_in_jpy_rounds_to_whole_yen_half_away_from_zero(hub: ReportingHub) -> None:
    """Reporting currency JPY (0 decimals), facts in USD (2 decimals), USD->JPY 150.

    10.01 USD -> 1,501.5 -> 1,502 JPY; its reversal -10.01 -> -1,502 (mirrors it, so the
    pair nets to 0); three bookings of 0.01 USD -> 1.5 -> 2 JPY each, 6 in total (the
    USD sum 0.03 would give 4.5 -> 5: the difference stays in the rows).
    """
    await setup(hub)
    await hub.set_reporting_currency("JPY")
    day = date(2026, 1, 15)
    await hub.record_revenue(
        [revenue("U1", "US1", "PU", "10.01", day), revenue("U2", "US1", "PU", "-10.01", date(2026, 2, 1))]
    )
    await hub.record_booking(
        *[
            m.BookingFact(
                source_system="crm",
                source_record_id=f"B{i}",
                customer_id="C",
                project_id=f"PB{i}",
                legal_entity="US1",
                currency="USD",
                booking_date=day,
                amount=D("0.01"),
            )
            for i in range(3)
        ]
    )
    assert await kpi(hub, "revenue", group_by="period") == {("2026-01", "JPY"): D(1502), ("2026-02", "JPY"): D(-1502)}
    assert await kpi(hub, "bookings") == {("all", "JPY"): D(6)}
    by_project = await kpi(hub, "bookings", group_by="project")
    assert set(by_project.values()) == {D(2)} and sum(by_project.values()) == D(6)


async def test_three_decimal_currencies_both_ways(hub: ReportingHub) -> None:
    """KWD and BHD have 3 decimals (fils).

    Into a 3-decimal functional currency: 33.33 USD booked in KW1 x 0.3071 = 10.235643
    -> 10.236 KWD; 0.05 USD -> 0.015355 -> 0.015 KWD; KW1's functional revenue 10.251.
    Out of one into USD: 1.235 KWD x 3.2563 = 4.0215305 -> 4.02 USD; 2.001 BHD x 2.6596 =
    5.3218596 -> 5.32 USD. Reporting total 33.33 + 0.05 + 4.02 + 5.32 = 42.72 USD.
    Reporting in KWD (3 decimals): 33.33 USD -> 10.236, 0.05 -> 0.015, 1.235 KWD stays.
    """
    await setup(hub)
    day = date(2026, 1, 20)
    facts = [
        revenue("K1", "KW1", "PK", "33.33", day, currency="USD"),
        revenue("K2", "KW1", "PK", "0.05", day, currency="USD"),
        revenue("K3", "KW1", "PK", "1.235", day),
        revenue("H1", "BH1", "PH", "2.001", day),
    ]
    await hub.record_revenue(facts)
    rows = {
        r["source_record_id"]: (r["functional_amount"], r["reporting_amount"])
        for r in await hub.pool.fetch("SELECT * FROM fact_revenue")
    }
    assert rows == {
        "K1": (D("10.236"), D("33.33")),
        "K2": (D("0.015"), D("0.05")),
        "K3": (D("1.235"), D("4.02")),
        "H1": (D("2.001"), D("5.32")),
    }
    assert await kpi(hub, "revenue", currency="functional", group_by="legal_entity") == {
        ("BH1", "BHD"): D("2.001"),
        ("KW1", "KWD"): D("11.486"),  # 10.236 + 0.015 + 1.235
    }
    assert await kpi(hub, "revenue") == {("all", "USD"): D("42.72")}

    await hub.set_reporting_currency("KWD")
    await hub.pool.execute("TRUNCATE fact_revenue")
    await hub.record_revenue(facts[:3])
    assert await kpi(hub, "revenue", group_by="project") == {("PK", "KWD"): D("11.486")}


@pytest.fixture
async def client(hub: ReportingHub) -> AsyncIterator[httpx.AsyncClient]:
    await setup(hub)
    transport = httpx.ASGITransport(app=make_app(hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_the_api_reports_the_defect_figure_in_cents(client: httpx.AsyncClient, hub: ReportingHub) -> None:
    """The defect seen on `make run`: 340,000 JPY revenue showed as 2,266.666667 USD."""
    await hub.record_revenue([revenue("R1", "JP1", "PJ", "340000", date(2026, 1, 31))])
    r = await client.get("/v1/reports/revenue", headers={"Authorization": "Bearer dev-finance"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"key": "all", "currency": "USD", "value": "2266.67"}]


# ---------------------------------------------------------------- property
def _expected(amount: Decimal, currency: str, to: str) -> Decimal:
    """The policy in Python: amount x dated rate, half away from zero, to `to`'s minor unit."""
    rate = D(1) if currency == to else RATES[(currency, to)]
    return (amount * rate).quantize(quantum(to), rounding=ROUND_HALF_UP)


_FACT = st.tuples(
    st.sampled_from(["US1", "JP1", "KW1"]),
    st.sampled_from(["PA", "PB", "PC"]),
    st.integers(min_value=-(10**9), max_value=10**9),  # minor units of the entity's currency
    st.sampled_from([date(2026, 1, 15), date(2026, 2, 15)]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=st.lists(_FACT, min_size=1, max_size=12), reporting=st.sampled_from(["USD", "JPY", "KWD"]))
async def test_reporting_rows_always_sum_to_the_reported_total(
    hub: ReportingHub, facts: list[tuple[str, str, int, date]], reporting: str
) -> None:
    """For any facts, in any of the three reporting currencies: every stored amount is a
    whole number of minor units and equals the policy computed in Python, and the rows of
    revenue grouped by project, period or legal entity add up to the ungrouped total."""
    if not await hub.pool.fetchval("SELECT count(*) FROM dim_legal_entity"):
        await setup(hub)
    await hub.set_reporting_currency(reporting)
    await hub.pool.execute("TRUNCATE fact_revenue")
    loaded = []
    for i, (entity, project, units, day) in enumerate(facts):
        cur = CURRENCY[entity]
        amount = D(units) * quantum(cur)
        # a USD fact in a non-USD entity exercises the functional conversion too
        currency = "USD" if entity == "KW1" and i % 2 else cur
        if currency != cur:
            amount = D(units) * quantum("USD")
        loaded.append(revenue(f"R{i}", entity, project, str(amount), day, currency=currency))
    await hub.record_revenue(loaded)
    stored = {r["source_record_id"]: r for r in await hub.pool.fetch("SELECT * FROM fact_revenue")}
    for fact in loaded:
        row = stored[fact.source_record_id]
        assert row["reporting_amount"] == _expected(fact.amount, fact.currency, reporting)
        assert row["functional_amount"] == _expected(fact.amount, fact.currency, CURRENCY[fact.legal_entity])
        assert row["reporting_amount"] % quantum(reporting) == 0
    ungrouped = await kpi(hub, "revenue")
    assert list(ungrouped) == [("all", reporting)]
    total = ungrouped[("all", reporting)]
    assert total == sum((stored[f.source_record_id]["reporting_amount"] for f in loaded), D(0))
    for group in ("project", "period", "legal_entity"):
        rows = await kpi(hub, "revenue", group_by=group)
        assert sum(rows.values(), D(0)) == total
    by_entity: dict[str, Decimal] = defaultdict(lambda: D(0))
    for f in loaded:
        by_entity[f.legal_entity] += stored[f.source_record_id]["functional_amount"]
    functional = await kpi(hub, "revenue", currency="functional", group_by="legal_entity")
    assert {k: v for (k, _), v in functional.items()} == {k: v for k, v in by_entity.items()}
