"""Pull-only subscribed events (`GET /api/v1/subscribed_events`).

Every create / update / delete of a workspace, story, time entry, expense, invoice or
workspace resource becomes an event `<subject>:<action>` carrying the subject's state.
Like the real feed: events are kept 9 days, may repeat (the same change under a second
event id: `webhook_duplicate_rate`) and may be generated out of order (`webhook_reorder`:
an event's `created_at` lags its `subject_changed_at` by up to `event_lag_max_s`, and it
is invisible until then), so a poller must overlap its window, dedupe by event id and
reconcile by subject.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .records import PER_PAGE_MAX, BadRequest
from .schema import TYPES

if TYPE_CHECKING:
    from .app import KantataSimulator

EVENTS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS subscribed_events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_type TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  subject_changed_at REAL NOT NULL,
  created_at REAL NOT NULL,
  payload TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS subscribed_events_created ON subscribed_events(created_at)",
)
EVENT_ID_BASE = 5_000_000
_QUERY = {"created_after", "created_before", "event_types", "page", "per_page", "include"}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(raw: str, name: str) -> float:
    try:
        d = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as e:
        raise BadRequest(f"{name} must be an ISO 8601 datetime") from e
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()


def _event_name(rtype: str) -> str:
    return TYPES[rtype].singular  # "time_entry:updated", as Kantata names them


class Events:
    def __init__(self, sim: KantataSimulator) -> None:
        self.sim = sim

    def record(self, rtype: str, action: str, rec: dict[str, Any]) -> None:
        """Inside the caller's write transaction."""
        f = self.sim.faults
        now = time.time()
        lag_max = self.sim.settings.event_lag_max_s
        copies = 2 if f.chance(f.cfg.webhook_duplicate_rate) else 1
        for _ in range(copies):
            lag = f.rng.random() * lag_max if f.cfg.webhook_reorder else 0.0
            self.sim.store.conn.execute(
                "INSERT INTO subscribed_events(event_type,subject_type,subject_id,subject_changed_at,created_at,"
                "payload) VALUES(?,?,?,?,?,?)",
                (
                    f"{_event_name(rtype)}:{action}",
                    TYPES[rtype].subject,
                    rec["id"],
                    now,
                    now + lag,
                    json.dumps(rec, separators=(",", ":")),
                ),
            )

    def _row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        seq, etype, stype, sid, changed, created, payload = row
        return {
            "id": str(EVENT_ID_BASE + int(seq)),
            "event_type": etype,
            "subject_type": stype,
            "subject_id": sid,
            "subject_changed_at": iso(changed),
            "created_at": iso(created),
            "payload": json.loads(payload),
        }

    async def list_route(self, request: Request) -> Response:
        from .app import k_error

        query = dict(request.query_params)
        unknown = sorted(set(query) - _QUERY)
        if unknown:
            return k_error(400, f"unknown filter {unknown[0]!r} for subscribed_events")
        try:
            return JSONResponse(self.listing(query))
        except BadRequest as e:
            return k_error(400, e.message)

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        now = time.time()
        oldest = now - self.sim.settings.events_retention_days * 86400
        where = ["created_at <= ?", "created_at >= ?"]
        args: list[Any] = [now, oldest]
        if query.get("created_after"):
            # timestamps go out rounded to the microsecond: half of one keeps `after` exclusive
            where.append("created_at > ?")
            args.append(parse_iso(query["created_after"], "created_after") + 5e-7)
        if query.get("created_before"):
            where.append("created_at < ?")
            args.append(parse_iso(query["created_before"], "created_before") - 5e-7)
        if query.get("event_types"):
            kinds = [k.strip() for k in query["event_types"].split(",") if k.strip()]
            where.append(f"event_type IN ({','.join('?' * len(kinds))})")
            args.extend(kinds)
        try:
            page = max(1, int(query.get("page") or 1))
            per_page = int(query.get("per_page") or 20)
        except ValueError as e:
            raise BadRequest("page and per_page must be integers") from e
        if not 1 <= per_page <= PER_PAGE_MAX:
            raise BadRequest(f"per_page must be between 1 and {PER_PAGE_MAX}")
        cond = " AND ".join(where)
        conn = self.sim.store.conn
        total = int(conn.execute(f"SELECT COUNT(*) FROM subscribed_events WHERE {cond}", args).fetchone()[0])
        rows = conn.execute(
            "SELECT seq,event_type,subject_type,subject_id,subject_changed_at,created_at,payload "
            f"FROM subscribed_events WHERE {cond} ORDER BY created_at, seq LIMIT ? OFFSET ?",
            [*args, per_page, (page - 1) * per_page],
        ).fetchall()
        events = [self._row(r) for r in rows]
        return {
            "count": total,
            "results": [{"key": "subscribed_events", "id": e["id"]} for e in events],
            "subscribed_events": {e["id"]: e for e in events},
            "meta": {"count": total, "page_count": max(1, -(-total // per_page)), "page_number": page},
        }

    def age(self, days: float) -> int:
        """Admin: move every event `days` into the past (to show the 9-day retention)."""
        with self.sim.store.tx() as c:
            cur = c.execute(
                "UPDATE subscribed_events SET created_at=created_at-?, subject_changed_at=subject_changed_at-?",
                (days * 86400, days * 86400),
            )
        return int(cur.rowcount)

    def raw(self, limit: int) -> list[dict[str, Any]]:
        rows = self.sim.store.conn.execute(
            "SELECT seq,event_type,subject_type,subject_id,subject_changed_at,created_at,payload "
            "FROM subscribed_events ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [self._row(r) for r in rows]
