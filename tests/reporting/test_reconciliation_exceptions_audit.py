"""Reconciliation, exceptions and the append-only audit log."""

from __future__ import annotations

from decimal import Decimal as D

import asyncpg
import pytest

from reporting import models as m
from reporting.hub import ExceptionNotFoundError, ReportingHub
from tests.reporting import dataset


def clean_totals() -> list[m.SourceTotals]:
    # January, US1: P1 12 h / 2400 USD (T1, T2), invoice I1 2200; P3 4 h / 0, invoice I3 1000
    return [
        m.SourceTotals(
            source_system="psa",
            legal_entity="US1",
            project_id="P1",
            period="2026-01",
            hours=D("12"),
            time_amount=D("2400"),
            currency="USD",
            record_ids=["T1", "T2"],
        ),
        m.SourceTotals(
            source_system="psa",
            legal_entity="US1",
            project_id="P3",
            period="2026-01",
            hours=D("4"),
            time_amount=D("0"),
            currency="USD",
            record_ids=["T3"],
        ),
        m.SourceTotals(
            source_system="erp",
            legal_entity="US1",
            project_id="P1",
            period="2026-01",
            hours=D("12"),
            time_amount=D("2400"),
            invoice_total=D("2200"),
            currency="USD",
            record_ids=["JE-1", "I1"],
        ),
        m.SourceTotals(
            source_system="erp",
            legal_entity="US1",
            project_id="P3",
            period="2026-01",
            hours=D("4"),
            time_amount=D("0"),
            invoice_total=D("1000"),
            currency="USD",
            record_ids=["JE-2", "I3"],
        ),
    ]


async def test_clean_data_reconciles_with_no_difference(hub: ReportingHub) -> None:
    await dataset.load(hub)
    await hub.record_source_totals(clean_totals())
    result = await hub.reconcile("2026-01", "US1")
    assert result["status"] == "clean"
    assert result["projects_checked"] == 2 and result["differences"] == []
    assert await hub.list_exceptions(kind="reconciliation") == []


async def test_crm_bookings_reconcile_against_the_hubs_booking_facts(hub: ReportingHub) -> None:
    await dataset.load(hub)
    booked = await hub.pool.fetch(
        "SELECT project_id, sum(amount) AS total, min(currency) AS currency FROM fact_booking "
        "WHERE legal_entity = 'US1' AND booking_date BETWEEN '2026-01-01' AND '2026-01-31' "
        "AND project_id IS NOT NULL GROUP BY project_id ORDER BY project_id"
    )
    assert booked, "the dataset books deals in January"
    crm = [
        m.SourceTotals(
            source_system="crm",
            legal_entity="US1",
            project_id=r["project_id"],
            period="2026-01",
            booking_total=r["total"],
            currency=r["currency"],
            record_ids=[f"opp-{r['project_id']}"],
        )
        for r in booked
    ]
    await hub.record_source_totals([*clean_totals(), *crm])
    assert (await hub.reconcile("2026-01", "US1"))["status"] == "clean"
    # the CRM says the deal behind the first project was sold for 0.01 more than the hub booked
    crm[0] = crm[0].model_copy(update={"booking_total": booked[0]["total"] + D("0.01")})
    await hub.replace_source_totals("crm", "US1", "2026-01", crm)
    result = await hub.reconcile("2026-01", "US1")
    assert [(d["project_id"], d["metric"], d["crm"], d["hub"]) for d in result["differences"]] == [
        (booked[0]["project_id"], "booking_total", booked[0]["total"] + D("0.01"), booked[0]["total"])
    ]
    assert result["differences"][0]["records"]["crm"] == [f"opp-{booked[0]['project_id']}"]
    stored = await hub.reconciliation_differences(result["run_id"])
    assert stored[0]["crm_value"] == booked[0]["total"] + D("0.01")


async def test_planted_difference_becomes_exception_then_clears(hub: ReportingHub) -> None:
    await dataset.load(hub)
    totals = clean_totals()
    totals[2] = totals[2].model_copy(update={"hours": D("11")})  # ERP lost an hour on P1
    await hub.record_source_totals(totals)
    result = await hub.reconcile("2026-01", "US1")
    assert result["status"] == "differences"
    assert [(d["project_id"], d["metric"], d["psa"], d["erp"], d["hub"]) for d in result["differences"]] == [
        ("P1", "hours", D("12"), D("11"), D("12"))
    ]
    diff = result["differences"][0]
    assert diff["records"] == {"psa": ["T1", "T2"], "erp": ["JE-1", "I1"], "crm": [], "hub": ["T1", "T2"]}
    exc = await hub.get_exception(diff["exception_id"])
    assert (exc["kind"], exc["status"], exc["project_id"], exc["period"]) == ("reconciliation", "open", "P1", "2026-01")
    assert exc["detail"]["values"] == {"psa": "12", "erp": "11", "hub": "12"}
    # a hub-side difference too: an invoice the ERP does not have
    runs = await hub.latest_reconciliation(period="2026-01", legal_entity="US1")
    assert [(r["run_id"], r["differences"]) for r in runs] == [(result["run_id"], 1)]
    stored = await hub.reconciliation_differences(result["run_id"])
    assert [(d["project_id"], d["metric"], d["exception_id"]) for d in stored] == [
        ("P1", "hours", diff["exception_id"])
    ]

    # the ERP is fixed and the sync reloads: the next run is clean and clears the exception
    await hub.record_source_totals(clean_totals())
    rerun = await hub.reconcile("2026-01", "US1")
    assert rerun["status"] == "clean"
    cleared = await hub.get_exception(diff["exception_id"])
    assert cleared["status"] == "resolved" and cleared["resolved_by"] == "reconciliation"


async def test_missing_hub_invoice_is_found(hub: ReportingHub) -> None:
    await dataset.load(hub)
    totals = clean_totals()
    totals[3] = totals[3].model_copy(update={"invoice_total": D("1500"), "record_ids": ["JE-2", "I3", "I9"]})
    await hub.record_source_totals(totals)
    result = await hub.reconcile("2026-01", "US1")
    assert [(d["project_id"], d["metric"], d["erp"], d["hub"]) for d in result["differences"]] == [
        ("P3", "invoice_total", D("1500"), D("1000"))
    ]
    assert result["differences"][0]["records"]["hub"] == ["I3"]


async def test_exceptions_dedupe_list_resolve(hub: ReportingHub) -> None:
    rec = m.ExceptionRecord(
        dedupe_key="engagement-O1:provisioning:erp_customer",
        kind="provisioning",
        error_type="NetSuiteValidationError",
        error_message="subsidiary missing",
        source="activities.erp.upsert_customer",
        workflow_id="engagement-O1",
        workflow_link="http://localhost:8233/namespaces/default/workflows/engagement-O1",
        opportunity_id="O1",
        customer_id="ACME",
        legal_entity="US1",
        detail={"field": "subsidiary"},
    )
    first = await hub.record_exception(rec)
    assert await hub.record_exception(rec) == first
    listed = await hub.list_exceptions()
    assert [(e["id"], e["occurrences"], e["status"]) for e in listed] == [(first, 2, "open")]
    assert listed[0]["detail"] == {"field": "subsidiary"}
    done = await hub.resolve_exception(first, resolved_by="alice", note="fixed in CRM")
    assert (done["status"], done["resolved_by"]) == ("resolved", "alice")
    assert await hub.list_exceptions(status="open") == []
    assert len(await hub.list_exceptions(status=None)) == 1
    # recurring after resolution re-opens it
    await hub.record_exception(rec)
    assert (await hub.get_exception(first))["status"] == "open"
    with pytest.raises(ExceptionNotFoundError):
        await hub.resolve_exception(999999, resolved_by="alice")


async def test_audit_log_is_append_only(hub: ReportingHub) -> None:
    a = await hub.record_audit("alice", "finance", "exception.resolve", "exception/1", {"note": "ok"}, "10.0.0.7")
    b = await hub.record_audit("bob", "sales_ops", "approval.approve", "engagement-O1", None, None)
    rows = await hub.list_audit()
    assert [(r["id"], r["actor"], r["action"]) for r in rows] == [
        (b, "bob", "approval.approve"),
        (a, "alice", "exception.resolve"),
    ]
    assert rows[1]["detail"] == {"note": "ok"} and rows[1]["source_ip"] == "10.0.0.7"
    assert [r["id"] for r in await hub.list_audit(actor="alice")] == [a]
    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await hub.pool.execute(sql)
    assert len(await hub.list_audit()) == 2


async def test_replacing_an_extract_drops_projects_the_source_no_longer_has(hub: ReportingHub) -> None:
    await dataset.load(hub)
    totals = clean_totals()
    stale = m.SourceTotals(
        source_system="psa",
        legal_entity="US1",
        project_id="P9",
        period="2026-01",
        hours=D("3"),
        time_amount=D("300"),
        currency="USD",
        record_ids=["T99"],
    )
    await hub.record_source_totals([*totals, stale])
    first = await hub.reconcile("2026-01", "US1")
    assert {(d["project_id"], d["metric"]) for d in first["differences"]} == {("P9", "hours"), ("P9", "time_amount")}
    # the next PSA extract no longer has P9: replacing the scope makes the run clean
    await hub.replace_source_totals("psa", "US1", "2026-01", [t for t in totals if t.source_system == "psa"])
    assert (await hub.reconcile("2026-01", "US1"))["status"] == "clean"
    with pytest.raises(ValueError):
        await hub.replace_source_totals("erp", "US1", "2026-01", [stale])


def _psa_erp_without_erp_time_amount() -> list[m.SourceTotals]:
    """What the source sync writes: the ERP holds hours and invoices, no time amounts."""
    return [t.model_copy(update={"time_amount": None}) if t.source_system == "erp" else t for t in clean_totals()]


async def test_erp_without_time_amounts_takes_no_part_in_that_metric(hub: ReportingHub) -> None:
    await dataset.load(hub)
    await hub.record_source_totals(_psa_erp_without_erp_time_amount())
    assert (await hub.reconcile("2026-01", "US1"))["status"] == "clean"
    # the PSA values a timecard at another rate than the hub: found, the ERP shows no value
    totals = _psa_erp_without_erp_time_amount()
    totals[0] = totals[0].model_copy(update={"time_amount": D("2400.01")})
    await hub.record_source_totals(totals)
    result = await hub.reconcile("2026-01", "US1")
    assert [(d["project_id"], d["metric"], d["psa"], d["erp"], d["hub"]) for d in result["differences"]] == [
        ("P1", "time_amount", D("2400.01"), None, D("2400"))
    ]
    # an ERP extract that does carry time amounts is compared (a project it lacks counts zero)
    await hub.replace_source_totals("psa", "US1", "2026-01", clean_totals()[:2])
    await hub.replace_source_totals(
        "erp", "US1", "2026-01", [clean_totals()[2].model_copy(update={"time_amount": D("2300")})]
    )
    result = await hub.reconcile("2026-01", "US1")
    assert {(d["project_id"], d["metric"], d["erp"]) for d in result["differences"]} == {
        ("P1", "time_amount", D("2300")),
        ("P3", "hours", D("0")),
        ("P3", "invoice_total", D("0")),
    }


async def test_staged_parts_add_up_and_commit_replaces_the_scope(hub: ReportingHub) -> None:
    await dataset.load(hub)
    await hub.record_source_totals(clean_totals())
    stale = m.SourceTotals(
        source_system="psa",
        legal_entity="US1",
        project_id="P9",
        period="2026-01",
        hours=D("3"),
        time_amount=D("300"),
        currency="USD",
        record_ids=["T99"],
    )
    await hub.record_source_totals([stale])

    def st(source: str, project: str, **kw: object) -> m.SourceTotals:
        return m.SourceTotals(
            source_system=source,
            legal_entity="US1",
            project_id=project,  # type: ignore[arg-type]
            period="2026-01",
            **kw,
        )

    key = "sync-US1-2026-01:run-1"
    # PSA in two pages; page 1 first staged with a wrong value, then retried
    await hub.stage_source_totals(
        key, "psa:p0", [st("psa", "P1", hours=D("12"), time_amount=D("2400"), currency="USD", record_ids=["T2", "T1"])]
    )
    await hub.stage_source_totals(key, "psa:p1", [st("psa", "P3", hours=D("40"), time_amount=D("0"))])
    await hub.stage_source_totals(key, "psa:p1", [st("psa", "P3", hours=D("4"), time_amount=D("0"), record_ids=["T3"])])
    # ERP: time bills by page, invoices from one extract; no time amounts
    await hub.stage_source_totals(key, "erp:tb:p0", [st("erp", "P1", hours=D("8"), record_ids=["T1"])])
    await hub.stage_source_totals(
        key,
        "erp:je",
        [st("erp", "P1", hours=D("4"), record_ids=["T2"]), st("erp", "P3", hours=D("4"), record_ids=["T3"])],
    )
    await hub.stage_source_totals(
        key,
        "erp:inv",
        [
            st("erp", "P1", invoice_total=D("2200"), currency="USD", record_ids=["I1"]),
            st("erp", "P3", invoice_total=D("1000"), currency="USD", record_ids=["I3"]),
        ],
    )
    # another run's stage is not touched by this commit
    await hub.stage_source_totals("other", "psa:p0", [st("psa", "P1", hours=D("99"))])

    assert await hub.commit_staged_source_totals(key, "US1", "2026-01") == {"psa": 2, "erp": 2, "crm": 0}
    rows = await hub.pool.fetch(
        "SELECT source_system, project_id, hours, time_amount, invoice_total, currency, record_ids "
        "FROM recon_source_total WHERE legal_entity = 'US1' AND period = '2026-01' "
        "ORDER BY source_system, project_id"
    )
    assert [tuple(r) for r in rows] == [
        ("erp", "P1", D("12"), None, D("2200"), "USD", ["I1", "T1", "T2"]),
        ("erp", "P3", D("4"), None, D("1000"), "USD", ["I3", "T3"]),
        ("psa", "P1", D("12"), D("2400"), None, "USD", ["T1", "T2"]),
        ("psa", "P3", D("4"), D("0"), None, None, ["T3"]),
    ]
    assert (await hub.reconcile("2026-01", "US1"))["status"] == "clean"  # P9 is gone
    assert await hub.pool.fetchval("SELECT count(*) FROM recon_source_stage WHERE sync_key = $1", key) == 0
    assert await hub.pool.fetchval("SELECT count(*) FROM recon_source_stage WHERE sync_key = 'other'") == 1
    # committing an empty stage empties the scope (a complete extract with nothing in it)
    assert await hub.commit_staged_source_totals("empty", "US1", "2026-01") == {"psa": 0, "erp": 0, "crm": 0}
    assert await hub.pool.fetchval("SELECT count(*) FROM recon_source_total") == 0
