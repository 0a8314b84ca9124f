"""The operations panel's reads: what needs a person today, each row with the engagement it
belongs to (opportunity id, workflow id) so the page can link it to the API and the Web UI.

- failed provisioning: open `engagement.needs_attention` exceptions whose reason is a
  provisioning saga that failed and was undone;
- delayed postings: projects whose approved PSA hours (the source sync's extract) exceed the
  hours posted to the hub for a period that ended more than N days ago;
- invoice mismatches: `invoice_total` differences of each scope's latest reconciliation run;
- master-data conflicts: open `master_data.conflict` exceptions;
- open exceptions by age: open or retrying ones, by days since first seen.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg

ROWS = 20  # per list: the panel shows the newest, the counts are complete
AGE_BUCKETS = (("under 1 day", 0, 1), ("1-3 days", 1, 3), ("3-7 days", 3, 7), ("over 7 days", 7, None))
ENGAGEMENT_PREFIX = "engagement-"


async def operations(
    pool: asyncpg.Pool, *, legal_entity: str | None, posting_delay_days: int, today: date
) -> dict[str, Any]:
    async with pool.acquire() as db:
        return {
            "failed_provisioning": await _exceptions(
                db, legal_entity, "kind = 'engagement.needs_attention' AND error_message LIKE 'provisioning failed%'"
            ),
            "delayed_postings": await _delayed_postings(db, legal_entity, posting_delay_days, today),
            "invoice_mismatches": await _invoice_mismatches(db, legal_entity),
            "master_data_conflicts": await _exceptions(db, legal_entity, "kind = 'master_data.conflict'"),
            "open_exceptions_by_age": await _by_age(db, legal_entity),
            "posting_delay_days": posting_delay_days,
        }


def _scope(legal_entity: str | None, column: str, params: list[Any]) -> str:
    if legal_entity is None:
        return ""
    params.append(legal_entity)
    return f" AND {column} = ${len(params)}"


async def _exceptions(db: asyncpg.Connection, legal_entity: str | None, where: str) -> dict[str, Any]:
    params: list[Any] = []
    clause = f"status <> 'resolved' AND {where}" + _scope(legal_entity, "legal_entity", params)
    total = await db.fetchval(f"SELECT count(*) FROM hub_exception WHERE {clause}", *params)
    rows = await db.fetch(
        "SELECT id, kind, status, legal_entity, opportunity_id, workflow_id, workflow_link, error_message, "
        f"occurrences, first_seen_at FROM hub_exception WHERE {clause} ORDER BY first_seen_at DESC LIMIT {ROWS}",
        *params,
    )
    return {"count": int(total), "items": [dict(r) for r in rows]}


async def _delayed_postings(
    db: asyncpg.Connection, legal_entity: str | None, delay_days: int, today: date
) -> dict[str, Any]:
    # a period is late once its last day is more than `delay_days` behind today
    latest_period = (today - timedelta(days=delay_days)).replace(day=1) - timedelta(days=1)
    params: list[Any] = [latest_period.strftime("%Y-%m")]
    rows = await db.fetch(
        "WITH posted AS (SELECT project_id, to_char(work_date, 'YYYY-MM') AS period, sum(hours) AS hours "
        "FROM fact_time GROUP BY 1, 2) "
        "SELECT s.legal_entity, s.project_id, s.period, s.hours AS approved_hours, "
        "coalesce(p.hours, 0) AS posted_hours, d.opportunity_id "
        "FROM recon_source_total s LEFT JOIN posted p ON p.project_id = s.project_id AND p.period = s.period "
        "LEFT JOIN dim_project d ON d.project_id = s.project_id "
        "WHERE s.source_system = 'psa' AND s.period <= $1 AND s.hours > coalesce(p.hours, 0)"
        + _scope(legal_entity, "s.legal_entity", params)
        + " ORDER BY s.period, s.legal_entity, s.project_id",
        *params,
    )
    items = [_with_workflow(dict(r)) for r in rows]
    return {"count": len(items), "items": items[:ROWS]}


async def _invoice_mismatches(db: asyncpg.Connection, legal_entity: str | None) -> dict[str, Any]:
    params: list[Any] = []
    rows = await db.fetch(
        "WITH latest AS (SELECT DISTINCT ON (legal_entity, period) id, legal_entity, period FROM recon_run "
        "ORDER BY legal_entity, period, id DESC) "
        "SELECT l.legal_entity, l.period, d.project_id, d.erp_value, d.hub_value, d.currency, "
        "p.opportunity_id FROM latest l JOIN recon_difference d ON d.run_id = l.id "
        "LEFT JOIN dim_project p ON p.project_id = d.project_id "
        "WHERE d.metric = 'invoice_total'" + _scope(legal_entity, "l.legal_entity", params) + " "
        "ORDER BY l.period DESC, l.legal_entity, d.project_id",
        *params,
    )
    items = [_with_workflow(dict(r)) for r in rows]
    return {"count": len(items), "items": items[:ROWS]}


async def _by_age(db: asyncpg.Connection, legal_entity: str | None) -> list[dict[str, Any]]:
    params: list[Any] = []
    clause = "status <> 'resolved'" + _scope(legal_entity, "legal_entity", params)
    counts = []
    for _label, low, high in AGE_BUCKETS:
        age = f"now() - first_seen_at >= interval '{low} days'" + (
            f" AND now() - first_seen_at < interval '{high} days'" if high is not None else ""
        )
        counts.append(f"count(*) FILTER (WHERE {age})")
    row = await db.fetchrow(f"SELECT {', '.join(counts)} FROM hub_exception WHERE {clause}", *params)
    assert row is not None
    return [{"age": label, "count": int(row[i])} for i, (label, _low, _high) in enumerate(AGE_BUCKETS)]


def _with_workflow(row: dict[str, Any]) -> dict[str, Any]:
    """The engagement a project-level row belongs to (when the hub knows the project's deal)."""
    opp = row.get("opportunity_id")
    row["workflow_id"] = f"{ENGAGEMENT_PREFIX}{opp}" if opp else None
    return row
