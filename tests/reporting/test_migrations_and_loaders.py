"""Migrations (once, idempotent, safe when raced) and idempotent loaders."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
from datetime import date
from decimal import Decimal as D

import asyncpg
import pytest

from reporting import models as m
from reporting.hub import ReportingHub
from reporting.loaders import MissingFxRateError, UnknownLegalEntityError
from reporting.migrate import MIGRATIONS_DIR, migrate_async, pending_migrations
from tests.reporting import dataset
from tests.reporting.conftest import dsn_for

EXPECTED_TABLES = {
    "dim_customer",
    "dim_project",
    "dim_consultant",
    "dim_legal_entity",
    "dim_service_line",
    "dim_service_offering",
    "dim_geography",
    "dim_currency",
    "dim_date",
    "fx_rate",
    "fact_booking",
    "fact_time",
    "fact_expense",
    "fact_billing_event",
    "fact_invoice",
    "fact_credit_memo",
    "fact_payment",
    "fact_revenue",
    "fact_cost",
    "hub_exception",
    "audit_log",
    "recon_source_total",
    "recon_run",
    "recon_difference",
    "schema_migrations",
}


async def test_migrate_fresh_database_races_and_reruns(pg_root: pathlib.Path) -> None:
    dsn = dsn_for(pg_root, "migrate_race")
    # five replicas at once: the advisory lock serialises them; the database is created
    results = await asyncio.gather(*(migrate_async(dsn) for _ in range(5)))
    versions = sorted(p.name.split("_")[0] for p in MIGRATIONS_DIR.glob("*.sql"))
    assert all(r == versions for r in results)
    assert await pending_migrations(dsn) == []
    conn = await asyncpg.connect(dsn)
    try:
        tables = {
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert EXPECTED_TABLES <= tables
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(versions)
    finally:
        await conn.close()


def test_migrate_command_line(pg_root: pathlib.Path) -> None:
    dsn = dsn_for(pg_root, "migrate_cli")
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "reporting.migrate", "--database-url", dsn],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        assert "reporting schema at version" in out.stdout


async def test_every_fact_has_lineage_source_and_no_float_money(hub: ReportingHub) -> None:
    rows = await hub.pool.fetch(
        "SELECT table_name, array_agg(column_name::text) AS cols, "
        "array_agg(data_type::text) AS types FROM information_schema.columns "
        "WHERE table_name LIKE 'fact_%' GROUP BY table_name"
    )
    assert len(rows) == 9
    for r in rows:
        cols = set(r["cols"])
        assert {
            "opportunity_id",
            "customer_id",
            "project_id",
            "contract_id",
            "legal_entity",
            "source_system",
            "source_record_id",
            "currency",
            "functional_currency",
            "reporting_currency",
            "fx_date",
            "fx_rate_functional",
            "fx_rate_reporting",
        } <= cols, r["table_name"]
        assert not {"real", "double precision", "money"} & set(r["types"]), r["table_name"]


async def counts(hub: ReportingHub) -> dict[str, int]:
    out = {}
    for t in (
        "fact_booking",
        "fact_time",
        "fact_revenue",
        "fact_invoice",
        "fact_payment",
        "fact_credit_memo",
        "fact_cost",
        "fact_expense",
    ):
        out[t] = await hub.pool.fetchval(f"SELECT count(*) FROM {t}")
    return out


async def test_reload_changes_nothing_and_updates_changed_rows(hub: ReportingHub) -> None:
    await dataset.load(hub)
    before = await counts(hub)
    snapshot = await hub.pool.fetch("SELECT * FROM fact_time ORDER BY source_record_id")
    await dataset.load(hub)  # the same batches again
    assert await counts(hub) == before
    again = await hub.pool.fetch("SELECT * FROM fact_time ORDER BY source_record_id")
    assert [dict(r) for r in again] == [dict(r) for r in snapshot]  # updated_at untouched

    facts = dataset.time_facts()
    result = await hub.record_time_facts(facts)
    assert (result.received, result.written) == (5, 0)
    changed = [facts[0].model_copy(update={"hours": D("7.5")}), *facts[1:]]
    result = await hub.record_time_facts(changed)
    assert (result.received, result.written) == (5, 1)
    assert await hub.pool.fetchval("SELECT hours FROM fact_time WHERE source_record_id = 'T1'") == D("7.50")
    # the same record twice in one batch: the last one does not fail the load
    dup = await hub.record_time_facts([facts[0], facts[0]])
    assert dup.received == 2 and await hub.pool.fetchval("SELECT count(*) FROM fact_time") == 5


async def test_new_records_skip_the_probe_only_when_no_stored_key_is_in_range(hub: ReportingHub) -> None:
    await dataset.load(hub)
    facts = dataset.time_facts()  # T1..T5 stored
    extra = facts[0].model_copy(update={"source_record_id": "T25"})  # between T2 and T3
    # a lone new id between stored ids: nothing stored in [T25, T25], plain insert
    assert (await hub.record_time_facts([extra])).written == 1
    # new ids next to a stored, changed record: the range holds T3, per-row upsert
    batch = [facts[2].model_copy(update={"hours": D("5")}), extra.model_copy(update={"source_record_id": "T26"})]
    assert (await hub.record_time_facts(batch)).written == 2
    assert (await hub.record_time_facts(batch)).written == 0
    assert await hub.pool.fetchval("SELECT hours FROM fact_time WHERE source_record_id = 'T3'") == D("5.00")
    assert await hub.pool.fetchval("SELECT count(*) FROM fact_time") == 7
    # another source system with the same ids is a different record
    other = [f.model_copy(update={"source_system": "psa2"}) for f in facts]
    assert (await hub.record_time_facts(other)).written == 5
    assert await hub.pool.fetchval(ROLLUP_CHECK) == 0


async def test_conversion_stores_rate_and_date(hub: ReportingHub) -> None:
    await dataset.load(hub)
    row = await hub.pool.fetchrow("SELECT * FROM fact_invoice WHERE source_record_id = 'I2'")
    assert (row["currency"], row["functional_currency"], row["reporting_currency"]) == ("GBP", "GBP", "USD")
    assert row["fx_date"] == date(2026, 2, 5)
    assert row["fx_rate_functional"] == 1 and row["fx_rate_reporting"] == D("1.3")
    assert row["reporting_total_amount"] == D("4680")
    # a USD fact in a GBP entity converts to functional through the inverse rate
    await hub.record_costs(
        [
            m.CostFact(
                source_system="erp",
                source_record_id="X9",
                cost_date=date(2026, 1, 20),
                cost_type="software",
                amount=D("125"),
                **{**dataset.LINEAGE["P2"], "currency": "USD"},
            )
        ]
    )
    cost = await hub.pool.fetchrow("SELECT * FROM fact_cost WHERE source_record_id = 'X9'")
    assert cost["functional_amount"] == D("100") and cost["reporting_amount"] == D("125")


async def test_loader_refuses_unknown_entity_missing_rate_and_floats(hub: ReportingHub) -> None:
    await dataset.load(hub)
    base = dict(
        source_system="crm", source_record_id="BX", booking_date=date(2026, 1, 5), amount=D("1"), customer_id="ACME"
    )
    with pytest.raises(UnknownLegalEntityError):
        await hub.record_booking(m.BookingFact(**base, legal_entity="XX9", currency="USD"))
    with pytest.raises(MissingFxRateError):
        await hub.record_booking(m.BookingFact(**base, legal_entity="US1", currency="EUR"))
    with pytest.raises(ValueError):
        m.BookingFact(**{**base, "amount": 1.5}, legal_entity="US1", currency="USD")
    assert await hub.pool.fetchval("SELECT count(*) FROM fact_booking WHERE source_record_id = 'BX'") == 0


ROLLUP_CHECK = """
SELECT count(*) FROM (
    SELECT date_trunc('month', work_date)::date AS month, project_id, consultant_id, currency,
           reporting_currency, count(*) AS entries, sum(hours) AS hours,
           coalesce(sum(hours) FILTER (WHERE billable), 0) AS billable_hours,
           sum(bill_amount) AS bill_amount, sum(reporting_cost_amount) AS reporting_cost_amount
      FROM fact_time GROUP BY 1, 2, 3, 4, 5
) f FULL JOIN (
    SELECT month, project_id, consultant_id, currency, reporting_currency, entries, hours,
           billable_hours, bill_amount, reporting_cost_amount FROM agg_time_month
) a USING (month, project_id, consultant_id, currency, reporting_currency)
WHERE (f.entries, f.hours, f.billable_hours, f.bill_amount, f.reporting_cost_amount)
      IS DISTINCT FROM (a.entries, a.hours, a.billable_hours, a.bill_amount,
                        a.reporting_cost_amount)
"""


async def test_monthly_time_rollup_follows_inserts_updates_and_deletes(hub: ReportingHub) -> None:
    await dataset.load(hub)
    assert await hub.pool.fetchval("SELECT count(*) FROM agg_time_month") == 4
    assert await hub.pool.fetchval(ROLLUP_CHECK) == 0
    facts = dataset.time_facts()
    # T1 moves to February and becomes non-billable; T3 changes consultant
    await hub.record_time_facts(
        [
            facts[0].model_copy(update={"work_date": date(2026, 2, 2), "billable": False}),
            facts[2].model_copy(update={"consultant_id": "C2"}),
        ]
    )
    assert await hub.pool.fetchval(ROLLUP_CHECK) == 0
    await hub.pool.execute("DELETE FROM fact_time WHERE source_record_id IN ('T2', 'T5')")
    assert await hub.pool.fetchval(ROLLUP_CHECK) == 0
    assert await hub.pool.fetchval("SELECT count(*) FROM agg_time_month WHERE entries = 0") == 0
    await hub.pool.execute("TRUNCATE fact_time")
    assert await hub.pool.fetchval("SELECT count(*) FROM agg_time_month") == 0


EMBEDDED_RUN = """
import asyncio, pathlib, sys
import asyncpg
from reporting.embedded import database_url
dsn = database_url(pathlib.Path(sys.argv[1]))
async def main():
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE IF NOT EXISTS survives (n int)")
    await conn.execute("INSERT INTO survives VALUES (1)")
    print(await conn.fetchval("SELECT count(*) FROM survives"))
    await conn.close()
asyncio.run(main())
"""


def test_embedded_server_state_survives_a_restart(tmp_path: pathlib.Path) -> None:
    counts = []
    for _ in range(2):  # two processes, each starting and (at exit) stopping the server
        out = subprocess.run(
            [sys.executable, "-c", EMBEDDED_RUN, str(tmp_path / "state")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "D2R_DATABASE_URL": ""},
        )
        counts.append(out.stdout.strip())
    assert counts == ["1", "2"]
    assert not (tmp_path / "state" / "pg" / "postmaster.pid").exists()  # stopped at exit
