"""Every KPI on the hand-computed dataset of dataset.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest

from reporting.hub import ReportingHub
from reporting.kpis import KpiError, KpiQuery
from tests.reporting import dataset


@pytest.fixture
async def loaded(hub: ReportingHub) -> ReportingHub:
    await dataset.load(hub)
    return hub


async def values(hub: ReportingHub, kpi: str, **kw: Any) -> dict[Any, Any]:
    result = await hub.kpi(kpi, KpiQuery(**kw))
    return {(r["key"], r["currency"]): r["value"] for r in result.rows}


async def test_bookings_by_period_reporting_currency(loaded: ReportingHub) -> None:
    # B2 is 8000 GBP booked 2026-01-10 at 1.25 -> 10000 USD
    assert await values(loaded, "bookings", group_by="period") == {
        ("2026-01", "USD"): D("20000"),
        ("2026-02", "USD"): D("5000"),
    }


async def test_bookings_functional_by_legal_entity(loaded: ReportingHub) -> None:
    assert await values(loaded, "bookings", group_by="legal_entity", currency="functional") == {
        ("UK1", "GBP"): D("8000"),
        ("US1", "USD"): D("15000"),
    }


async def test_bookings_filter_by_customer_includes_hierarchy(loaded: ReportingHub) -> None:
    assert await values(loaded, "bookings", customer_id="ACME") == {("all", "USD"): D("20000")}
    assert await values(loaded, "bookings", customer_id="ACME-EU") == {("all", "USD"): D("10000")}
    assert await values(loaded, "bookings", group_by="service_line", period_from="2026-02", period_to="2026-02") == {
        ("cloud", "USD"): D("5000")
    }


async def test_revenue_and_billed_revenue(loaded: ReportingHub) -> None:
    # revenue: Jan 2400 + 1200 GBP*1.25; Feb 1200 GBP*1.30 + 1000
    assert await values(loaded, "revenue", group_by="period") == {
        ("2026-01", "USD"): D("3900"),
        ("2026-02", "USD"): D("2560"),
    }
    # billed: Jan I1 2000 + I3 1000; Feb I2 3000 GBP*1.30 - CM1 100
    assert await values(loaded, "billed_revenue", group_by="period") == {
        ("2026-01", "USD"): D("3000"),
        ("2026-02", "USD"): D("3800"),
    }
    assert await values(loaded, "billed_revenue", group_by="geography", currency="functional") == {
        ("GB", "GBP"): D("3000"),
        ("US", "USD"): D("2900"),
    }


async def test_backlog(loaded: ReportingHub) -> None:
    # as of Feb end: P1 10000-2400, P2 10000-(1500+1560), P3 5000-1000
    assert await values(loaded, "backlog", group_by="project", as_of=date(2026, 2, 28)) == {
        ("P1", "USD"): D("7600"),
        ("P2", "USD"): D("6940"),
        ("P3", "USD"): D("4000"),
    }
    assert await values(loaded, "backlog", group_by="period", period_from="2026-01", period_to="2026-02") == {
        ("2026-01", "USD"): D("16100"),
        ("2026-02", "USD"): D("18540"),
    }
    assert await values(loaded, "backlog", group_by="legal_entity", currency="functional", as_of=date(2026, 2, 28)) == {
        ("UK1", "GBP"): D("5600"),
        ("US1", "USD"): D("11600"),
    }


async def test_wip_and_deferred_revenue(loaded: ReportingHub) -> None:
    # Feb end: P1 2400-(2000-100)=500 WIP; P2 3060-3900 -> 840 deferred; P3 1000-1000 = 0
    assert await values(loaded, "wip", group_by="project", as_of=date(2026, 2, 28)) == {
        ("P1", "USD"): D("500"),
        ("P2", "USD"): D("0"),
        ("P3", "USD"): D("0"),
    }
    assert await values(loaded, "deferred_revenue", group_by="project", as_of=date(2026, 2, 28)) == {
        ("P1", "USD"): D("0"),
        ("P2", "USD"): D("840"),
        ("P3", "USD"): D("0"),
    }
    # Jan end: WIP P1 400 + P2 1500; deferred P3 1000 (invoiced, not yet recognized)
    assert await values(loaded, "wip", group_by="period", period_from="2026-01", period_to="2026-02") == {
        ("2026-01", "USD"): D("1900"),
        ("2026-02", "USD"): D("500"),
    }
    assert await values(loaded, "deferred_revenue", group_by="period", period_from="2026-01", period_to="2026-02") == {
        ("2026-01", "USD"): D("1000"),
        ("2026-02", "USD"): D("840"),
    }


async def test_collections_ar_aging_and_dso(loaded: ReportingHub) -> None:
    assert await values(loaded, "collections", group_by="period") == {("2026-02", "USD"): D("2000")}
    # 2026-02-15: I1 2200-110 open, I2 3600 GBP at its 1.30 rate, I3 paid
    aging = await loaded.kpi("ar_aging", KpiQuery(as_of=date(2026, 2, 15)))
    assert len(aging.rows) == 1
    row = aging.rows[0]
    assert (row["current"], row["days_1_30"], row["value"]) == (D("6770"), 0, D("6770"))
    # 2026-04-15: I1 (due 03-02) open 1090 and I2 (due 03-07) 4680 are 31-60 days late
    late = (await loaded.kpi("ar_aging", KpiQuery(as_of=date(2026, 4, 15), group_by="customer"))).rows
    assert {(r["key"], r["days_31_60"], r["value"]) for r in late} == {
        ("ACME", D("1090"), D("1090")),
        ("ACME-EU", D("4680"), D("4680")),
    }
    # DSO at Feb end: AR 5770 / invoiced in 90 days (2200+4680+1000) * 90 = 65.9
    dso = (await loaded.kpi("dso", KpiQuery(as_of=date(2026, 2, 28)))).rows
    assert [(r["receivables"], r["billed"], r["value"]) for r in dso] == [(D("5770"), D("7880"), D("65.9"))]


async def test_project_margin(loaded: ReportingHub) -> None:
    rows = {
        r["key"]: r
        for r in (
            await loaded.kpi("project_margin", KpiQuery(group_by="project", period_from="2026-01", period_to="2026-02"))
        ).rows
    }
    # P1: 2400 - (800+400 labour + 200 expense); P2: 3060 - (750+780); P3: 1000 - (400+300)
    assert {k: (r["revenue"], r["cost"], r["value"], r["margin_pct"]) for k, r in rows.items()} == {
        "P1": (D("2400"), D("1400"), D("1000"), D("41.67")),
        "P2": (D("3060"), D("1530"), D("1530"), D("50.00")),
        "P3": (D("1000"), D("700"), D("300"), D("30.00")),
    }


async def test_utilization(loaded: ReportingHub) -> None:
    # January 2026 has 22 working days: 176 capacity hours per consultant.
    result = await loaded.kpi(
        "utilization", KpiQuery(group_by="consultant", period_from="2026-01", period_to="2026-01")
    )
    rows = {r["key"]: r for r in result.rows}
    assert result.unit == "ratio"
    assert (rows["C1"]["capacity_hours"], rows["C1"]["billable_hours"], rows["C1"]["hours"], rows["C1"]["value"]) == (
        D("176"),
        D("12"),
        D("16"),
        D("0.0682"),
    )
    assert (rows["C2"]["billable_hours"], rows["C2"]["value"]) == (D("8"), D("0.0455"))
    # February has 20 working days; only C2 booked 8 billable hours
    by_period = await values(loaded, "utilization", group_by="period", period_from="2026-01", period_to="2026-02")
    assert by_period == {("2026-01", None): D("0.0568"), ("2026-02", None): D("0.0250")}


async def test_unsupported_combinations_are_refused(loaded: ReportingHub) -> None:
    with pytest.raises(KpiError):
        await loaded.kpi("utilization", KpiQuery(group_by="project"))
    with pytest.raises(KpiError):
        await loaded.kpi("bookings", KpiQuery(group_by="consultant"))
    with pytest.raises(KpiError):
        await loaded.kpi("nope", KpiQuery())
    with pytest.raises(KpiError):
        await loaded.kpi("bookings", KpiQuery(period_from="2026-13"))


async def test_utilization_capacity_respects_active_dates(loaded: ReportingHub) -> None:
    from reporting import models as m

    # joined on Thursday 2026-01-15: 12 working days left in January -> 96 hours
    await loaded.upsert_dimensions(
        [
            m.ConsultantDim(
                consultant_id="C3",
                home_legal_entity="US1",
                service_line="consulting",
                geography="US",
                active_from=date(2026, 1, 15),
            )
        ]
    )
    rows = {
        r["key"]: r
        for r in (
            await loaded.kpi("utilization", KpiQuery(group_by="consultant", period_from="2026-01", period_to="2026-01"))
        ).rows
    }
    assert rows["C3"]["capacity_hours"] == D("96") and rows["C3"]["value"] == D("0")
    by_line = await values(loaded, "utilization", group_by="service_line", period_from="2026-01", period_to="2026-01")
    # consulting: C1 12 billable hours over 176 + 96 capacity hours
    assert by_line[("consulting", None)] == D("0.0441")


async def test_balances_mid_month_add_the_month_so_far(loaded: ReportingHub) -> None:
    # 2026-02-15: B3 (02-03) is booked, R3/R4 (02-28) not yet recognized;
    # I2 (02-05) and CM1 (02-10) are billed
    assert await values(loaded, "backlog", group_by="project", as_of=date(2026, 2, 15)) == {
        ("P1", "USD"): D("7600"),
        ("P2", "USD"): D("8500"),
        ("P3", "USD"): D("5000"),
    }
    assert await values(loaded, "wip", as_of=date(2026, 2, 15)) == {("all", "USD"): D("500")}
    assert await values(loaded, "deferred_revenue", as_of=date(2026, 2, 15)) == {("all", "USD"): D("3400")}


BALANCE_BY_SCAN = """
WITH mv AS (
    SELECT coalesce(project_id, contract_id, '~' || customer_id) AS eng, booking_date AS d,
           reporting_amount AS b, 0 AS r, 0 AS i FROM fact_booking
    UNION ALL SELECT coalesce(project_id, contract_id, '~' || customer_id), revenue_date, 0,
           reporting_amount, 0 FROM fact_revenue
    UNION ALL SELECT coalesce(project_id, contract_id, '~' || customer_id), invoice_date, 0,
           0, reporting_net_amount FROM fact_invoice
    UNION ALL SELECT coalesce(project_id, contract_id, '~' || customer_id), memo_date, 0, 0,
           -reporting_net_amount FROM fact_credit_memo
), bal AS (SELECT eng, sum(b) AS b, sum(r) AS r, sum(i) AS i FROM mv WHERE d <= $1 GROUP BY eng)
SELECT coalesce(sum(greatest(b - r, 0)), 0), coalesce(sum(greatest(r - i, 0)), 0),
       coalesce(sum(greatest(i - r, 0)), 0) FROM bal
"""


async def test_engagement_balances_follow_late_updates_and_deletes(loaded: ReportingHub) -> None:
    from reporting import models as m

    rev = dataset.revenue()
    inv = dataset.invoices()
    # late-arriving December revenue, a revenue amount corrected, an invoice re-dated
    # into January, a booking deleted
    await loaded.record_revenue(
        [
            m.RevenueFact(
                source_system="erp",
                source_record_id="R0",
                revenue_date=date(2025, 12, 31),
                amount=D("700"),
                **dataset.LINEAGE["P1"],
            ),
            rev[3].model_copy(update={"amount": D("1250")}),
        ]
    )
    await loaded.record_invoice(inv[1].model_copy(update={"invoice_date": date(2026, 1, 30)}))
    await loaded.pool.execute("DELETE FROM fact_booking WHERE source_record_id = 'B3'")
    for as_of in (date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 15), date(2026, 2, 28), date(2026, 6, 30)):
        expected = tuple(await loaded.pool.fetchrow(BALANCE_BY_SCAN, as_of))
        got = tuple(
            [
                sum((await values(loaded, kpi, as_of=as_of)).values(), D(0))
                for kpi in ("backlog", "wip", "deferred_revenue")
            ]
        )
        assert got == expected, as_of
    series = await values(loaded, "backlog", group_by="period", period_from="2025-12", period_to="2026-03")
    assert series[("2026-03", "USD")] == (await loaded.pool.fetchrow(BALANCE_BY_SCAN, date(2026, 3, 31)))[0]
    # truncating a source table rebuilds the balances from what is left
    await loaded.pool.execute("TRUNCATE fact_revenue")
    assert await values(loaded, "wip", as_of=date(2026, 2, 28)) == {("all", "USD"): D("0")}
    assert await values(loaded, "backlog", as_of=date(2026, 2, 28)) == {("all", "USD"): D("20000")}


AR_BY_SCAN = """
SELECT coalesce(sum(bal), 0) FROM (
    SELECT (i.total_amount
            - coalesce((SELECT sum(amount) FROM fact_payment p
                         WHERE p.invoice_id = i.source_record_id AND p.payment_date <= $1), 0)
            - coalesce((SELECT sum(total_amount) FROM fact_credit_memo c
                         WHERE c.invoice_id = i.source_record_id AND c.memo_date <= $1), 0)
           ) * i.fx_rate_reporting AS bal
      FROM fact_invoice i WHERE i.invoice_date <= $1) x
"""


async def test_receivables_follow_partial_payments_deletes_and_memos(loaded: ReportingHub) -> None:
    from reporting import models as m

    lin = dataset.LINEAGE
    # I2 (3600 GBP) paid in two parts, the second later corrected; I3's payment deleted
    await loaded.record_payment(
        m.PaymentFact(
            source_system="erp",
            source_record_id="PAY3",
            invoice_id="I2",
            payment_date=date(2026, 3, 1),
            amount=D("1600"),
            **lin["P2"],
        ),
        m.PaymentFact(
            source_system="erp",
            source_record_id="PAY4",
            invoice_id="I2",
            payment_date=date(2026, 3, 20),
            amount=D("1000"),
            **lin["P2"],
        ),
    )
    await loaded.record_payment(
        m.PaymentFact(
            source_system="erp",
            source_record_id="PAY4",
            invoice_id="I2",
            payment_date=date(2026, 3, 20),
            amount=D("2000"),
            **lin["P2"],
        )
    )
    await loaded.pool.execute("DELETE FROM fact_payment WHERE source_record_id = 'PAY2'")
    await loaded.record_credit_memo(
        m.CreditMemoFact(
            source_system="erp",
            source_record_id="CM2",
            memo_date=date(2026, 3, 5),
            invoice_id="I1",
            net_amount=D("1000"),
            tax_amount=D("90"),
            total_amount=D("1090"),
            **lin["P1"],
        )
    )
    open_until = dict(await loaded.pool.fetch("SELECT source_record_id, open_until FROM invoice_settlement"))
    assert open_until["I1"] == date(2026, 3, 5) and open_until["I2"] == date(2026, 3, 20)
    assert open_until["I3"] == date.max  # 'infinity' reads as date.max
    for as_of in (
        date(2026, 1, 31),
        date(2026, 2, 15),
        date(2026, 3, 1),
        date(2026, 3, 10),
        date(2026, 3, 20),
        date(2026, 6, 30),
    ):
        result = await loaded.kpi("ar_aging", KpiQuery(as_of=as_of))
        got = sum((r["value"] for r in result.rows), D(0))
        assert got == await loaded.pool.fetchval(AR_BY_SCAN, as_of), as_of


def test_finish_margin_fills_missing_measures() -> None:
    from reporting.kpis import finish_margin

    rows = finish_margin(
        [
            {
                "key": "P9",
                "currency": "USD",
                "expense_cost": None,
                "labor_cost": D("300.50"),
                "other_cost": None,
                "revenue": None,
            },
            {
                "key": None,
                "currency": "USD",
                "expense_cost": D("10"),
                "labor_cost": None,
                "other_cost": D("5"),
                "revenue": D("60"),
            },
        ]
    )
    assert rows[0] == {
        "key": "P9",
        "currency": "USD",
        "expense_cost": D(0),
        "labor_cost": D("300.50"),
        "other_cost": D(0),
        "revenue": D(0),
        "cost": D("300.50"),
        "value": D("-300.50"),
        "margin_pct": None,
    }
    assert (rows[1]["key"], rows[1]["cost"], rows[1]["value"], rows[1]["margin_pct"]) == (
        D(0),
        D("15"),
        D("45"),
        D("75.00"),
    )
    assert list(rows[1]) == [
        "key",
        "currency",
        "expense_cost",
        "labor_cost",
        "other_cost",
        "revenue",
        "cost",
        "value",
        "margin_pct",
    ]


MARGIN_ROLLUP_QUERIES: list[dict[str, Any]] = [
    dict(group_by="service_line", period_from="2026-01", period_to="2026-12"),
    dict(group_by="service_line", period_from="2026-01", period_to="2026-12", currency="functional"),
    dict(group_by="service_line", period_from="2026-02", period_to="2026-02"),
    dict(group_by="service_line"),
    dict(group_by="service_line", legal_entity="US1", period_from="2025-12"),
    dict(group_by="service_line", service_line="cloud", period_to="2026-01"),
    dict(group_by="legal_entity", currency="functional"),
    dict(group_by="period", period_from="2025-12", period_to="2026-03"),
    dict(group_by="none", service_line="consulting"),
]


async def assert_margin_rollup_matches_scan(hub: ReportingHub) -> None:
    """Each margin the rollup answers equals the general (source-scanning) query's."""
    from reporting import kpis

    for kw in MARGIN_ROLLUP_QUERIES:
        q = KpiQuery(**kw)
        assert "agg_margin_service_line_month" in kpis.build("project_margin", q)[0], kw
        fast = (await hub.kpi("project_margin", q)).rows
        sql, params = kpis.flow_query(q, kpis.FLOW_KPIS["project_margin"])
        general = kpis.finish_margin([dict(r) for r in await hub.pool.fetch(sql, *params)])
        assert fast == general, kw
        assert [list(r) for r in fast] == [list(r) for r in general], kw


async def test_margin_rollup_equals_the_general_query(loaded: ReportingHub) -> None:
    from reporting import kpis
    from reporting import models as m

    # filters the rollup cannot answer keep the general query
    for kw in (
        dict(group_by="project"),
        dict(group_by="service_line", customer_id="ACME"),
        dict(group_by="service_line", geography="US"),
        dict(group_by="customer", period_from="2026-01"),
    ):
        assert "agg_margin_service_line_month" not in kpis.build("project_margin", KpiQuery(**kw))[0], kw
    await assert_margin_rollup_matches_scan(loaded)
    by_line = await values(loaded, "project_margin", group_by="service_line")
    # consulting: P1 2400 - 1400; cloud: P2 + P3 (3060 - 1530) + (1000 - 700)
    assert by_line == {("cloud", "USD"): D("1830"), ("consulting", "USD"): D("1000")}

    # the same batches again: nothing counted twice
    await dataset.load(loaded)
    await assert_margin_rollup_matches_scan(loaded)
    assert await values(loaded, "project_margin", group_by="service_line") == by_line

    # late facts, a correction, a delete, and a cost on a project not (yet) in dim_project
    lin = dataset.LINEAGE
    await loaded.record_revenue(
        [
            m.RevenueFact(
                source_system="erp",
                source_record_id="R0",
                revenue_date=date(2025, 12, 31),
                amount=D("700"),
                **lin["P1"],
            ),
            dataset.revenue()[3].model_copy(update={"amount": D("1250")}),
        ]
    )
    await loaded.record_time_facts(
        [dataset.time_facts()[4].model_copy(update={"cost_amount": D("650"), "work_date": date(2026, 3, 2)})]
    )
    await loaded.pool.execute("DELETE FROM fact_expense WHERE source_record_id = 'E1'")
    await loaded.record_costs(
        [
            m.CostFact(
                source_system="erp",
                source_record_id="X9",
                cost_date=date(2026, 2, 1),
                cost_type="software",
                amount=D("50"),
                **{**lin["P3"], "project_id": "P9"},
            )
        ]
    )
    await assert_margin_rollup_matches_scan(loaded)
    # finish_margin reads a missing key (no service line) as 0, on both paths
    assert await values(loaded, "project_margin", group_by="service_line") == {
        ("cloud", "USD"): D("2015"),
        ("consulting", "USD"): D("1900"),
        (D(0), "USD"): D("-50"),
    }

    # service lines change: P2 moves to data, P3 loses its service line, P9 appears
    projects = {p.project_id: p for p in dataset.PROJECTS}
    await loaded.upsert_dimensions(
        [
            projects["P2"].model_copy(update={"service_line": "data"}),
            projects["P3"].model_copy(update={"service_line": None}),
            projects["P3"].model_copy(update={"project_id": "P9", "service_line": "cloud"}),
        ]
    )
    await assert_margin_rollup_matches_scan(loaded)
    moved = await values(loaded, "project_margin", group_by="service_line")
    assert set(moved) == {("cloud", "USD"), ("consulting", "USD"), ("data", "USD"), (D(0), "USD")}
    await loaded.pool.execute("DELETE FROM dim_project WHERE project_id = 'P9'")
    await assert_margin_rollup_matches_scan(loaded)

    # truncating a source rebuilds the rollup from what is left
    await loaded.pool.execute("TRUNCATE fact_revenue")
    await assert_margin_rollup_matches_scan(loaded)
    await loaded.pool.execute("TRUNCATE fact_time")
    await assert_margin_rollup_matches_scan(loaded)
