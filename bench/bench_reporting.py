"""Reporting hub benchmark: loader vs raw COPY at 1M time facts, and KPI latency.

    .venv/bin/python bench/bench_reporting.py [--rows 1000000] [--database-url DSN]

Without --database-url it starts an embedded PostgreSQL in a temporary directory.
Prints figures; asserts nothing. Goals (issue 7): loader >= 0.5x raw COPY rows/s;
KPI p95 < 50 ms at 1M time facts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import pathlib
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from reporting import models as m
from reporting.embedded import start_embedded_postgres, stop_embedded_postgres
from reporting.hub import ReportingHub
from reporting.kpis import KpiQuery
from reporting.loaders import FACTS
from reporting.migrate import migrate_async

START = dt.date(2025, 1, 1)
DAYS = 730
N_CONSULTANTS = 500
N_PROJECTS = 2000
N_CUSTOMERS = 400
ENTITIES = (("US1", "USD"), ("UK1", "GBP"))


def workdays() -> list[dt.date]:
    days = (START + dt.timedelta(days=i) for i in range(DAYS))
    return [d for d in days if d.weekday() < 5]


def lineage(p: int) -> dict[str, Any]:
    le, cur = ENTITIES[p % 2]
    return dict(
        opportunity_id=f"O{p}",
        customer_id=f"CU{p % N_CUSTOMERS}",
        project_id=f"P{p}",
        contract_id=f"K{p}",
        legal_entity=le,
        currency=cur,
    )


def time_facts(rows: int) -> list[m.TimeFact]:
    rnd = random.Random(7)
    days = workdays()
    out = []
    hours = [Decimal(h) for h in ("2", "4", "6", "8")]
    for i in range(rows):
        c = i % N_CONSULTANTS
        day = days[(i // N_CONSULTANTS) % len(days)]
        p = (c * 4 + rnd.randrange(4)) % N_PROJECTS
        h = hours[rnd.randrange(4)]
        billable = rnd.random() < 0.8
        out.append(
            m.TimeFact.model_construct(
                source_system="psa",
                source_record_id=f"TE{i:08d}",
                consultant_id=f"C{c}",
                work_date=day,
                hours=h,
                billable=billable,
                bill_amount=h * 150 if billable else Decimal(0),
                cost_amount=h * 70,
                fx_date=None,
                **lineage(p),
            )
        )
    return out


async def seed_other_facts(hub: ReportingHub) -> None:
    await hub.upsert_dimensions([m.LegalEntityDim(legal_entity=le, functional_currency=cur) for le, cur in ENTITIES])
    await hub.upsert_dimensions(
        [
            m.CustomerDim(customer_id=f"CU{i}", parent_customer_id=f"CU{i // 10}" if i >= 10 else None)
            for i in range(N_CUSTOMERS)
        ]
    )
    await hub.upsert_dimensions(
        [
            m.ProjectDim(
                project_id=f"P{p}",
                customer_id=f"CU{p % N_CUSTOMERS}",
                legal_entity=ENTITIES[p % 2][0],
                service_line=("cloud", "data", "consulting")[p % 3],
                geography=("US", "GB", "DE")[p % 3],
            )
            for p in range(N_PROJECTS)
        ]
    )
    await hub.upsert_dimensions(
        [
            m.ConsultantDim(
                consultant_id=f"C{c}",
                home_legal_entity=ENTITIES[c % 2][0],
                service_line=("cloud", "data", "consulting")[c % 3],
                geography=("US", "GB", "DE")[c % 3],
            )
            for c in range(N_CONSULTANTS)
        ]
    )
    await hub.upsert_dimensions(
        [
            m.FxRate(
                from_currency="GBP",
                to_currency="USD",
                rate_date=START + dt.timedelta(days=d),
                rate=Decimal("1.25") + Decimal(d % 30) / 1000,
            )
            for d in range(0, DAYS, 7)
        ]
    )
    months = [START + dt.timedelta(days=31 * k) for k in range(24)]
    await hub.record_booking(
        *[
            m.BookingFact(
                source_system="crm",
                source_record_id=f"B{p}",
                booking_date=START + dt.timedelta(days=p % 300),
                amount=Decimal(50000 + p),
                **lineage(p),
            )
            for p in range(N_PROJECTS)
        ]
    )
    await hub.record_revenue(
        [
            m.RevenueFact(
                source_system="erp",
                source_record_id=f"R{p}-{k}",
                revenue_date=d,
                amount=Decimal(1500 + p % 100),
                **lineage(p),
            )
            for p in range(N_PROJECTS)
            for k, d in enumerate(months)
        ]
    )
    await hub.record_invoice(
        *[
            m.InvoiceFact(
                source_system="erp",
                source_record_id=f"I{p}-{k}",
                invoice_date=d,
                due_date=d + dt.timedelta(days=30),
                net_amount=Decimal(1400),
                tax_amount=Decimal(140),
                total_amount=Decimal(1540),
                **lineage(p),
            )
            for p in range(N_PROJECTS)
            for k, d in enumerate(months)
        ]
    )
    await hub.record_payment(
        *[
            m.PaymentFact(
                source_system="erp",
                source_record_id=f"PAY{p}-{k}",
                invoice_id=f"I{p}-{k}",
                payment_date=d + dt.timedelta(days=40),
                amount=Decimal(1540),
                **lineage(p),
            )
            for p in range(N_PROJECTS)
            for k, d in enumerate(months[:-3])
        ]
    )


def converted(facts: list[m.TimeFact]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """fact_time rows with the functional/reporting columns the loader would derive."""
    cols = [c for c in FACTS["fact_time"].columns if c != "fx_date"]
    cols += [
        "functional_currency",
        "reporting_currency",
        "fx_date",
        "fx_rate_functional",
        "fx_rate_reporting",
        "functional_bill_amount",
        "reporting_bill_amount",
        "functional_cost_amount",
        "reporting_cost_amount",
    ]
    out = []
    for f in facts:
        if f.currency == "USD":
            rr = Decimal(1)
        else:
            offset = (f.work_date - START).days // 7 * 7
            rr = Decimal("1.25") + Decimal(offset % 30) / 1000
        base = tuple(getattr(f, c) for c in cols[:14])
        out.append(
            (
                *base,
                f.currency,
                "USD",
                f.work_date,
                Decimal(1),
                rr,
                f.bill_amount,
                f.bill_amount * rr,
                f.cost_amount,
                f.cost_amount * rr,
            )
        )
    return cols, out


QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("bookings", dict(group_by="period", period_from="2025-01", period_to="2025-12")),
    ("backlog", dict(group_by="period", period_from="2026-01", period_to="2026-12")),
    ("utilization", dict(group_by="period", period_from="2026-01", period_to="2026-12")),
    ("utilization", dict(group_by="consultant", period_from="2026-06", period_to="2026-06")),
    ("wip", dict(group_by="project", as_of=dt.date(2026, 6, 30))),
    ("billed_revenue", dict(group_by="period", period_from="2026-01", period_to="2026-12")),
    ("revenue", dict(group_by="legal_entity", period_from="2026-01", period_to="2026-12", currency="functional")),
    ("deferred_revenue", dict(group_by="customer", as_of=dt.date(2026, 6, 30))),
    ("collections", dict(group_by="period", period_from="2026-01", period_to="2026-12")),
    ("ar_aging", dict(group_by="customer", as_of=dt.date(2026, 6, 30))),
    ("dso", dict(group_by="legal_entity", as_of=dt.date(2026, 6, 30))),
    ("project_margin", dict(group_by="project", period_from="2026-06", period_to="2026-06")),
    ("project_margin", dict(group_by="service_line", period_from="2026-01", period_to="2026-12")),
]


async def bench(dsn: str, rows: int, batch: int, repeats: int) -> None:
    await migrate_async(dsn)
    hub = await ReportingHub.connect(dsn, max_size=4)
    try:
        t = time.perf_counter()
        await seed_other_facts(hub)
        print(f"seeded dimensions and other facts in {time.perf_counter() - t:.1f} s")
        facts = time_facts(rows)
        spec = FACTS["fact_time"]
        from operator import attrgetter

        getter = attrgetter(*spec.columns)
        records = [getter(f) for f in facts]

        async with hub.pool.acquire() as conn:
            await conn.execute("DROP TABLE IF EXISTS bench_raw_time")
            await conn.execute(
                f"CREATE TABLE bench_raw_time AS SELECT {', '.join(spec.columns)} FROM fact_time WITH NO DATA"
            )
            t = time.perf_counter()
            for i in range(0, rows, batch):
                await conn.copy_records_to_table("bench_raw_time", records=records[i : i + batch], columns=spec.columns)
            raw = time.perf_counter() - t
            await conn.execute("DROP TABLE bench_raw_time")

            # The same rows, derived columns computed beforehand, COPYed straight into
            # fact_time (its indexes and rollup trigger in place): the same destination.
            full_cols, full_records = converted(facts)
            t = time.perf_counter()
            for i in range(0, rows, batch):
                await conn.copy_records_to_table("fact_time", records=full_records[i : i + batch], columns=full_cols)
            raw_fact = time.perf_counter() - t
            await conn.execute("TRUNCATE fact_time")

        t = time.perf_counter()
        written = 0
        for i in range(0, rows, batch):
            written += (await hub.record_time_facts(facts[i : i + batch])).written
        loader = time.perf_counter() - t
        t = time.perf_counter()
        rewritten = 0
        for i in range(0, rows, batch):
            rewritten += (await hub.record_time_facts(facts[i : i + batch])).written
        reload = time.perf_counter() - t
        await hub.pool.execute("VACUUM ANALYZE")

        print(f"\n== load {rows:,} time facts (batches of {batch:,}) ==")
        print(f"raw COPY into a bare table : {raw:7.2f} s  {rows / raw:12,.0f} rows/s")
        print(
            f"raw COPY into fact_time    : {raw_fact:7.2f} s  {rows / raw_fact:12,.0f} rows/s"
            "  (derived columns precomputed; indexes and rollup trigger in place)"
        )
        print(f"loader (COPY+FX+upsert)    : {loader:7.2f} s  {rows / loader:12,.0f} rows/s  written={written:,}")
        print(f"  loader / raw COPY rows/s : {raw / loader:.2f}x vs bare table, {raw_fact / loader:.2f}x vs fact_time")
        print(
            f"loader, same batch again   : {reload:7.2f} s  {rows / reload:12,.0f} rows/s  "
            f"written={rewritten:,} (idempotent)"
        )

        print(f"\n== KPI latency at {rows:,} time facts ({repeats} runs each) ==")
        print(f"{'kpi':16} {'query':58} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}")
        for name, kw in QUERIES:
            q = KpiQuery(**kw)
            n_rows = len((await hub.kpi(name, q)).rows)  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                await hub.kpi(name, q)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            desc = " ".join(f"{k}={v}" for k, v in kw.items())
            print(f"{name:16} {desc[:58]:58} {p50:8.1f} {p95:8.1f} {n_rows:6}")
    finally:
        await hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(bench(args.database_url, args.rows, args.batch, args.repeats))
        return
    with tempfile.TemporaryDirectory(prefix="d2r-bench-") as tmp:
        pgdata = pathlib.Path(tmp) / "pg"
        dsn = start_embedded_postgres(pgdata, database="d2r_bench")
        try:
            asyncio.run(bench(dsn, args.rows, args.batch, args.repeats))
        finally:
            stop_embedded_postgres(pgdata)


if __name__ == "__main__":
    main()
