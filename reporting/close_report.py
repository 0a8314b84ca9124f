"""The month-end close report in the hub: one row per engagement per close run and every
exception the close raised, written a window at a time (idempotent: a retried window
overwrites its own rows) and read page by page (keyset on the row's id)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from domain.model import ExceptionRecord


async def record_lines(
    pool: asyncpg.Pool, report_id: str, legal_entity: str, period: str, window: int, lines: Sequence[Mapping[str, Any]]
) -> int:
    """`lines`: EngagementCloseLine dumps in JSON mode (each with `workflow_id` and `ok`)."""
    rows = [(report_id, ln["workflow_id"], legal_entity, period, window, ln["ok"], json.dumps(ln)) for ln in lines]
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO close_report_line (report_id, workflow_id, legal_entity, period, window_no, ok, line) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) "
            "ON CONFLICT (report_id, workflow_id) DO UPDATE SET window_no = EXCLUDED.window_no, "
            "ok = EXCLUDED.ok, line = EXCLUDED.line, recorded_at = now()",
            rows,
        )
    return len(rows)


async def mark_handed_back(pool: asyncpg.Pool, report_id: str, refused: Mapping[str, str]) -> int:
    """The batch could not write these engagements' outboxes: the line says why."""
    async with pool.acquire() as conn:
        await conn.executemany(
            "UPDATE close_report_line SET line = jsonb_set(line, '{outbox_error}', to_jsonb($3::text)) "
            "WHERE report_id = $1 AND workflow_id = $2",
            [(report_id, w, error) for w, error in sorted(refused.items())],
        )
    return len(refused)


async def record_exceptions(pool: asyncpg.Pool, report_id: str, exceptions: Sequence[ExceptionRecord]) -> int:
    rows = [(report_id, x.exception_id, x.code, x.model_dump_json()) for x in exceptions]
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO close_report_exception (report_id, exception_id, code, body) "
            "VALUES ($1, $2, $3, $4::text::jsonb) "
            "ON CONFLICT (report_id, exception_id) DO UPDATE SET code = EXCLUDED.code, body = EXCLUDED.body",
            rows,
        )
    return len(rows)


async def page_lines(pool: asyncpg.Pool, report_id: str, after: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` lines after workflow id `after` ("" from the start), by workflow id."""
    rows = await pool.fetch(
        "SELECT line FROM close_report_line WHERE report_id = $1 AND workflow_id > $2 ORDER BY workflow_id LIMIT $3",
        report_id,
        after,
        limit,
    )
    return [_json(r["line"]) for r in rows]


async def page_exceptions(pool: asyncpg.Pool, report_id: str, after: str, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT body FROM close_report_exception WHERE report_id = $1 AND exception_id > $2 "
        "ORDER BY exception_id LIMIT $3",
        report_id,
        after,
        limit,
    )
    return [_json(r["body"]) for r in rows]


def _json(value: Any) -> dict[str, Any]:
    """The hub's pool decodes jsonb; a bare asyncpg connection hands back text."""
    return dict(json.loads(value) if isinstance(value, str) else value)
