"""SQLite persistence shared by the simulators.

One generic `records` table holds every record as JSON (type, id, data); the vendor
layers compile their query languages to SQL over `json_extract`. WAL mode, and every
acknowledged write is committed before the response is sent, so a restart or kill -9
loses nothing that was acknowledged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS records(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  ext TEXT,
  data TEXT NOT NULL,
  UNIQUE(type, id)
);
CREATE INDEX IF NOT EXISTS records_id ON records(id);
CREATE INDEX IF NOT EXISTS records_type_ext2 ON records(type, ext) WHERE ext IS NOT NULL;
DROP INDEX IF EXISTS records_type_ext;
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(token TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors(id TEXT PRIMARY KEY, q TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  created REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL,
  delivered_at REAL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(delivered_at, next_at);
"""


class Store:
    def __init__(self, path: str, extra_indexes: Iterable[str] = ()) -> None:
        self.path = path
        if path != ":memory:":
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.lock = threading.RLock()
        self._savepoints = 0
        c = self.conn
        c.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives process crashes (kill -9); only an OS crash or
        # power loss could drop the last transactions.
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=5000")
        c.execute("PRAGMA cache_size=-65536")
        c.executescript(SCHEMA)
        for ix in extra_indexes:
            c.execute(ix)

    # -- transactions -------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; inside another one (a composite request running its
        subrequests) it is a savepoint, so a failed subrequest undoes only itself."""
        with self.lock:
            if self.conn.in_transaction:
                self._savepoints += 1
                sp = f"tx{self._savepoints}"
                self.conn.execute(f"SAVEPOINT {sp}")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute(f"ROLLBACK TO {sp}")
                    self.conn.execute(f"RELEASE {sp}")
                    raise
                else:
                    self.conn.execute(f"RELEASE {sp}")
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    # -- meta / counters ----------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def next_counter(self, name: str, n: int = 1) -> int:
        """Reserve n values; return the first. Call inside tx()."""
        row = self.conn.execute(
            "INSERT INTO counters(name,n) VALUES(?,?) ON CONFLICT(name) DO UPDATE SET n=n+excluded.n RETURNING n",
            (name, n),
        ).fetchone()
        return int(row[0]) - n + 1

    # -- records ------------------------------------------------------------------
    def is_empty(self) -> bool:
        return self.conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def get(self, rtype: str | None, rid: str) -> dict[str, Any] | None:
        if rtype is None:
            row = self.conn.execute("SELECT data FROM records WHERE id=?", (rid,)).fetchone()
        else:
            row = self.conn.execute("SELECT data FROM records WHERE type=? AND id=?", (rtype, rid)).fetchone()
        return None if row is None else json.loads(row[0])

    def get_typed(self, rid: str) -> tuple[str, dict[str, Any]] | None:
        row = self.conn.execute("SELECT type, data FROM records WHERE id=?", (rid,)).fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def get_many(self, ids: Iterable[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        ids = list(set(ids))
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT id, type, data FROM records WHERE id IN ({marks})"
            for rid, rtype, data in self.conn.execute(q, chunk):
                out[rid] = (rtype, json.loads(data))
        return out

    def find_by_ext(self, rtype: str, ext: str) -> list[dict[str, Any]]:
        return [
            json.loads(r[0])
            for r in self.conn.execute("SELECT data FROM records WHERE type=? AND ext=? ORDER BY seq", (rtype, ext))
        ]

    def find_by_field(self, rtype: str, field: str, value: Any) -> list[dict[str, Any]]:
        return [
            json.loads(r[0])
            for r in self.conn.execute(
                f"SELECT data FROM records WHERE type=? AND json_extract(data,'$.{field}')=? ORDER BY seq",
                (rtype, value),
            )
        ]

    def insert(self, rtype: str, rid: str, data: dict[str, Any], ext: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO records(type,id,ext,data) VALUES(?,?,?,?)",
            (rtype, rid, ext, json.dumps(data, separators=(",", ":"))),
        )

    def update(self, rtype: str, rid: str, data: dict[str, Any], ext: str | None = None) -> None:
        self.conn.execute(
            "UPDATE records SET data=?, ext=? WHERE type=? AND id=?",
            (json.dumps(data, separators=(",", ":")), ext, rtype, rid),
        )

    def delete(self, rtype: str, rid: str) -> bool:
        cur = self.conn.execute("DELETE FROM records WHERE type=? AND id=?", (rtype, rid))
        return cur.rowcount > 0

    def insert_many(self, rows: Iterable[tuple[str, str, str | None, str]]) -> None:
        self.conn.executemany("INSERT INTO records(type,id,ext,data) VALUES(?,?,?,?)", rows)

    def counts(self) -> dict[str, int]:
        return {
            str(t): int(n)
            for t, n in self.conn.execute("SELECT type, COUNT(*) FROM records GROUP BY type ORDER BY type")
        }

    def dump(self, rtype: str, limit: int, offset: int) -> list[dict[str, Any]]:
        return [
            json.loads(r[0])
            for r in self.conn.execute(
                "SELECT data FROM records WHERE type=? ORDER BY seq LIMIT ? OFFSET ?",
                (rtype, limit, offset),
            )
        ]

    def duplicate_groups(self, rtype: str, expr: str) -> list[dict[str, Any]]:
        """Groups of records of `rtype` sharing a non-null value of the SQL expression."""
        q = (
            f"SELECT {expr} AS k, json_group_array(id) FROM records "
            f"WHERE type=? AND {expr} IS NOT NULL AND {expr} != '' "
            "GROUP BY k HAVING COUNT(*) > 1 ORDER BY k"
        )
        return [{"key": k, "ids": json.loads(ids)} for k, ids in self.conn.execute(q, (rtype,))]

    def reset(self) -> None:
        with self.tx() as c:
            for t in ("records", "counters", "tokens", "meta", "cursors", "outbox"):
                c.execute(f"DELETE FROM {t}")
            c.execute("DELETE FROM sqlite_sequence")

    # -- tokens -------------------------------------------------------------------
    def save_token(self, token: str, expires: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO tokens(token,expires) VALUES(?,?)", (token, expires))

    def token_expiry(self, token: str) -> float | None:
        row = self.conn.execute("SELECT expires FROM tokens WHERE token=?", (token,)).fetchone()
        return None if row is None else float(row[0])

    def expire_all_tokens(self) -> None:
        self.conn.execute("UPDATE tokens SET expires=0")

    # -- outbox -------------------------------------------------------------------
    def enqueue_event(self, event_id: str, etype: str, body: dict[str, Any]) -> None:
        now = time.time()
        self.conn.execute(
            "INSERT OR IGNORE INTO outbox(event_id,type,body,created,next_at) VALUES(?,?,?,?,?)",
            (event_id, etype, json.dumps(body, separators=(",", ":")), now, now),
        )
