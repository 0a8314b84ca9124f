"""A month-end window's per-engagement facts in the hub while the window runs
(contracts/window_stage.py says why): put by the activity that reads or produces them,
got back by id by the activities that consume them, deleted when the close reconciles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import asyncpg
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
KEPT_FOR = timedelta(days=31)  # rows of a close that ended before reconciling


class StagedWindow(Protocol):
    """Which window of which close run (contracts.window_stage.StagedWindow)."""

    @property
    def report_id(self) -> str: ...

    @property
    def window(self) -> int: ...


class WindowStage:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, where: StagedWindow, part: str, items: Mapping[str, BaseModel]) -> int:
        """Each item (key -> model) of one part of a window; a retried write overwrites."""
        rows = [(where.report_id, where.window, part, k, v.model_dump_json()) for k, v in sorted(items.items())]
        async with self._pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO close_window_stage (report_id, window_no, part, item_key, body) "
                "VALUES ($1, $2, $3, $4, $5::text::jsonb) "
                "ON CONFLICT (report_id, window_no, part, item_key) DO UPDATE SET body = EXCLUDED.body, "
                "recorded_at = now()",
                rows,
            )
        return len(rows)

    async def get(
        self, where: StagedWindow, part: str, keys: Iterable[str], model: type[M], field: str | None = None
    ) -> dict[str, M]:
        """The items of `keys` (a key not staged is missing from the answer); `field`: only
        that member of each item (e.g. an outbox's `erp`), as `model`."""
        wanted = sorted(set(keys))
        column = "body" if field is None else "body -> $4::text"
        args: list[Any] = [where.report_id, where.window, part]
        if field is not None:
            args.append(field)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT item_key, ({column})::text AS body FROM close_window_stage "
                "WHERE report_id = $1 AND window_no = $2 AND part = $3 AND item_key = ANY($"
                f"{len(args) + 1}::text[])",
                *args,
                wanted,
            )
        return {r["item_key"]: model.model_validate_json(r["body"]) for r in rows if r["body"] not in (None, "null")}

    async def drop(self, report_id: str) -> int:
        """A close run's rows, and any a close that ended early left a month ago."""
        async with self._pool.acquire() as conn:
            done = await conn.execute(
                "DELETE FROM close_window_stage WHERE report_id = $1 OR recorded_at < now() - $2::interval",
                report_id,
                KEPT_FOR,
            )
        return int(done.split()[-1])
