"""Bookings are append-only in the hub: a change order is its own booking in its own month,
and no past month's bookings or backlog change when it arrives. Through the real reporting
activity (the one the engagement workflow calls), the embedded hub and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal as D

import httpx
import pytest

from activities.reporting import ReportingActivities
from contracts.reporting import RecordEngagementInput
from domain.amendments import Amendment, AmendmentTreatment, LineChange, apply_amendment
from domain.billing import Delivery
from domain.bookings import booking_movements
from domain.contract import LineTerms, open_contract
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.fx import FxRateTable
from domain.model import LegalEntity
from domain.money import Money
from reporting import models as m
from reporting.hub import ReportingHub
from tests.reporting.conftest import make_app

FIN = {"Authorization": "Bearer dev-finance"}
US01 = LegalEntity(code="US01", name="d2r Inc", functional_currency="USD", tax_jurisdiction="US", erp_instance="us")
FF = ContractLine(
    line_id="FF",
    name="Implementation",
    billing_model=BillingModel.FIXED_FEE,
    revenue_method=RevenueMethod.COST_TO_COST,
    amount=Money.of("120000.00", "USD"),
)
DEAL = Engagement(
    opportunity_id="006CO",
    name="Change-order deal",
    customer=Customer(customer_id="ACC", name="Acme", country="US"),
    legal_entity="US01",
    currency="USD",
    contract_value=Money.of("120000.00", "USD"),
    close_date=date(2026, 7, 15),
    billing_terms="Net 30",
    service_package="IMPL",
    contract_start=date(2026, 7, 15),
    contract_end=date(2027, 3, 31),
    lines=[FF],
)


def amendment(amendment_id: str, on: date, price: str) -> Amendment:
    return Amendment(
        amendment_id=amendment_id,
        effective_date=on,
        treatment=AmendmentTreatment.PROSPECTIVE,
        reason="change order",
        changes=[LineChange(contract_line_id="FF", price=Money.of(price, "USD"))],
    )


def revenue(rid: str, day: date, amount: str) -> m.RevenueFact:
    return m.RevenueFact(
        source_system="erp",
        source_record_id=rid,
        customer_id="ACC",
        project_id="PRJ-CO",
        contract_id="SO-CO",
        opportunity_id="006CO",
        legal_entity="US01",
        currency="USD",
        revenue_date=day,
        amount=D(amount),
    )


@pytest.fixture
async def api(hub: ReportingHub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(hub)), base_url="http://t") as c:
        yield c


async def by_period(api: httpx.AsyncClient, kpi: str) -> dict[str, str]:
    r = await api.get(
        f"/v1/reports/{kpi}",
        headers=FIN,
        params={"group_by": "period", "period_from": "2026-07", "period_to": "2026-11"},
    )
    assert r.status_code == 200, r.text
    return {row["key"]: row["value"] for row in r.json()["rows"]}


async def test_a_change_order_books_in_its_month_and_the_past_never_changes(
    hub: ReportingHub, api: httpx.AsyncClient
) -> None:
    """FF 120,000 USD booked 2026-07-15; revenue Jul 20,000, Aug 30,000, Sep 30,000.

    Before: bookings Jul 120,000; backlog at month ends Jul 100,000, Aug 70,000, Sep 40,000.
    A1 (effective 2026-10-01) raises the price to 150,000: +30,000 booked in October;
    October revenue 10,000 -> October backlog 40,000 + 30,000 - 10,000 = 60,000.
    A2 (effective 2026-11-15) cuts it to 140,000: -10,000 booked in November; a reversal of
    2,000 of October's revenue, dated 2026-11-20, lands in November too -> November
    backlog 60,000 - 10,000 + 2,000 = 52,000. July-October read the same after each step.
    """
    acts = ReportingActivities(hub, {"US01": US01}, FxRateTable())
    state = open_contract(
        DEAL,
        project_id="PRJ-CO",
        contract_id="SO-CO",
        line_terms={"FF": LineTerms(line=FF, estimate_at_completion=Money.of("80000.00", "USD"))},
    )

    async def record(applied: list) -> None:  # type: ignore[type-arg]
        current = DEAL.model_copy(update={"lines": [t.line for t in state.terms.values()]})
        await acts.record_engagement(
            RecordEngagementInput(
                workflow_id="engagement-006CO",
                engagement=current,
                bookings=booking_movements(DEAL, applied),
                project_id="PRJ-CO",
                contract_id="SO-CO",
            )
        )

    await record([])
    await hub.record_revenue(
        [
            revenue("REV-7", date(2026, 7, 31), "20000"),
            revenue("REV-8", date(2026, 8, 31), "30000"),
            revenue("REV-9", date(2026, 9, 30), "30000"),
        ]
    )
    assert await by_period(api, "bookings") == {"2026-07": "120000"}
    before = {"2026-07": "100000", "2026-08": "70000", "2026-09": "40000"}
    assert {k: v for k, v in (await by_period(api, "backlog")).items() if k in before} == before

    a1 = apply_amendment(state, amendment("A1", date(2026, 10, 1), "150000.00"), Delivery())
    state = a1.state
    await record([a1.applied])
    await hub.record_revenue([revenue("REV-10", date(2026, 10, 31), "10000")])
    assert await by_period(api, "bookings") == {"2026-07": "120000", "2026-10": "30000"}
    backlog = await by_period(api, "backlog")
    assert {k: backlog[k] for k in before} == before
    assert backlog["2026-10"] == "60000"

    a2 = apply_amendment(state, amendment("A2", date(2026, 11, 15), "140000.00"), Delivery())
    state = a2.state
    await record([a1.applied, a2.applied])
    await hub.record_revenue([revenue("REV-10-R", date(2026, 11, 20), "-2000")])
    assert await by_period(api, "bookings") == {"2026-07": "120000", "2026-10": "30000", "2026-11": "-10000"}
    assert await by_period(api, "revenue") == {
        "2026-07": "20000",
        "2026-08": "30000",
        "2026-09": "30000",
        "2026-10": "10000",
        "2026-11": "-2000",
    }
    backlog = await by_period(api, "backlog")
    assert {k: backlog[k] for k in before} == before
    assert (backlog["2026-10"], backlog["2026-11"]) == ("60000", "52000")
    rows = await hub.pool.fetch(
        "SELECT source_record_id, booking_date, amount, amendment_id FROM fact_booking ORDER BY booking_date"
    )
    assert [(r["source_record_id"], r["booking_date"], r["amount"], r["amendment_id"]) for r in rows] == [
        ("006CO:FF", date(2026, 7, 15), D("120000"), None),
        ("006CO:FF:A1", date(2026, 10, 1), D("30000"), "A1"),
        ("006CO:FF:A2", date(2026, 11, 15), D("-10000"), "A2"),
    ]

    # The CRM's contract value of the July deal is now 140,000: July reconciles clean,
    # because the hub compares the deal's bookings to date (120,000 + 30,000 - 10,000).
    await hub.record_source_totals(
        [
            m.SourceTotals(
                source_system="crm",
                legal_entity="US01",
                project_id="PRJ-CO",
                period="2026-07",
                booking_total=D("140000"),
                currency="USD",
                record_ids=["006CO"],
            )
        ]
    )
    result = await hub.reconcile("2026-07", "US01")
    assert result["differences"] == [], result
