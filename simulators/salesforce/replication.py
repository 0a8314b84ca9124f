"""Data replication as Salesforce has it: the Recycle Bin (deleted records keep their data
with `IsDeleted = true`; `queryAll` sees them, `query` does not), and the sObject Get
Updated / Get Deleted resources (`sobjects/<Object>/updated/?start=&end=` and
`/deleted/`), which work to the minute over the last 30 (updated) or 15 (deleted) days."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from .._http import HTTPError, Request, Response, json_response

if TYPE_CHECKING:
    from .app import SalesforceSimulator

# queryAll's source: live records and the Recycle Bin, with the columns SOQL compiles to
WITH_DELETED = "(SELECT seq, type, id, data FROM records UNION ALL SELECT seq, type, id, data FROM recycle_bin)"
UPDATED_WINDOW_DAYS = 30  # "Results are returned for no more than 30 days previous"
DELETED_WINDOW_DAYS = 15  # getDeleted: "no more than 15 days previous"


def _stamp(d: dt.datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def recycle(sim: SalesforceSimulator, rtype: str, data: dict[str, Any]) -> None:
    """Move a record to the Recycle Bin (inside the caller's transaction)."""
    now = dt.datetime.now(dt.UTC)
    gone = {**data, "IsDeleted": True, "SystemModstamp": _stamp(now)}
    c = sim.store.conn
    c.execute(
        "INSERT OR REPLACE INTO recycle_bin(seq, type, id, data, deleted) "
        "SELECT seq, type, id, ?, ? FROM records WHERE type = ? AND id = ?",
        (json.dumps(gone, separators=(",", ":")), _stamp(now), rtype, data["Id"]),
    )
    sim.store.delete(rtype, data["Id"])


def in_recycle_bin(sim: SalesforceSimulator, rid: str) -> bool:
    return sim.store.conn.execute("SELECT 1 FROM recycle_bin WHERE id = ?", (rid,)).fetchone() is not None


def _error(code: str, message: str) -> HTTPError:
    return HTTPError(json_response([{"message": message, "errorCode": code}], 400))


def _window(sim: SalesforceSimulator, req: Request, obj: str, days: int) -> tuple[str, dt.datetime, dt.datetime]:
    """The object and the [start, end] span, both cut to the minute (the seconds are ignored)."""
    o = sim._obj(obj)
    bounds = []
    for name in ("start", "end"):
        raw = req.query_params.get(name)
        if not raw:
            raise _error("MISSING_ARGUMENT", f"Missing required parameter: {name}")
        try:
            d = dt.datetime.fromisoformat(raw.replace(" ", "+").replace("Z", "+00:00"))
        except ValueError:
            raise _error("INVALID_REPLICATION_DATE", f"{name} is not a valid ISO 8601 date and time: {raw}") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        bounds.append(d.astimezone(dt.UTC).replace(second=0, microsecond=0))
    start, end = bounds
    if end - start < dt.timedelta(minutes=1):
        raise _error("INVALID_REPLICATION_DATE", "startDate must be at least one minute greater than endDate")
    now = dt.datetime.now(dt.UTC)
    if start < now - dt.timedelta(days=days):
        raise _error("INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago")
    return o.name, start, end


def _covered(end: dt.datetime) -> str:
    """latestDateCovered: never past the current minute, which may still change; the
    next sweep starts there (and reads again what it already saw, which is harmless)."""
    return _stamp(min(end, dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)))


async def updated(sim: SalesforceSimulator, req: Request, ver: str, obj: str) -> Response:
    """Ids of the records added or changed in the span, by `SystemModstamp`."""
    rtype, start, end = _window(sim, req, obj, UPDATED_WINDOW_DAYS)
    rows = sim.store.conn.execute(
        "SELECT id FROM records WHERE type = ? AND json_extract(data, '$.SystemModstamp') >= ? "
        "AND json_extract(data, '$.SystemModstamp') < ? ORDER BY json_extract(data, '$.SystemModstamp'), seq",
        (rtype, _stamp(start), _stamp(end)),
    ).fetchall()
    return json_response({"ids": [r[0] for r in rows], "latestDateCovered": _covered(end)})


async def deleted(sim: SalesforceSimulator, req: Request, ver: str, obj: str) -> Response:
    """The records deleted in the span, with their deletion time."""
    rtype, start, end = _window(sim, req, obj, DELETED_WINDOW_DAYS)
    c = sim.store.conn
    rows = c.execute(
        "SELECT id, deleted FROM recycle_bin WHERE type = ? AND deleted >= ? AND deleted < ? ORDER BY deleted, seq",
        (rtype, _stamp(start), _stamp(end)),
    ).fetchall()
    earliest = c.execute("SELECT MIN(deleted) FROM recycle_bin WHERE type = ?", (rtype,)).fetchone()[0]
    return json_response(
        {
            "deletedRecords": [{"id": rid, "deletedDate": when} for rid, when in rows],
            "earliestDateAvailable": earliest or _stamp(start),
            "latestDateCovered": _covered(end),
        }
    )
