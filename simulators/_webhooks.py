"""Outbound webhooks of a simulator: an outbox in the simulator's SQLite (written inside
the business write's transaction) and a dispatcher that POSTs due events, signed the
Standard Webhooks way, with backoff on failure and the duplicate/reorder faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import traceback
from typing import Any

import httpx

from ._faults import FaultState
from ._settings import SimSettings
from ._store import Store


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks v1 signature: base64 HMAC-SHA256 of "{id}.{ts}.{body}"."""
    key_b64 = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    key = base64.b64decode(key_b64)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookOutbox:
    def __init__(self, source: str, store: Store, faults: FaultState, settings: SimSettings) -> None:
        self.source = source
        self.store = store
        self.faults = faults
        self.poll_s = settings.webhook_poll_s
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self._http: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def emit(self, etype: str, data: dict[str, Any], key: str) -> None:
        """Queue an event (call inside the business write's transaction).

        `key` names the business fact so the same fact is never queued twice."""
        event_id = "evt_" + hashlib.sha256(f"{self.source}:{etype}:{key}".encode()).hexdigest()[:24]
        body = {
            "type": etype,
            "id": event_id,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": self.source,
            "data": data,
        }
        self.store.enqueue_event(event_id, etype, body)

    async def deliver_due(self, force: bool = False) -> dict[str, int]:
        """One outbox pass: POST every due event (all undelivered ones when forced)."""
        stats = {"attempted": 0, "delivered": 0, "failed": 0}
        url = self.url
        if not url:
            return stats
        rows = self.store.conn.execute(
            "SELECT seq, event_id, body, attempts FROM outbox WHERE delivered_at IS NULL "
            + ("" if force else "AND next_at <= ? ")
            + "ORDER BY seq LIMIT 100",
            () if force else (time.time(),),
        ).fetchall()
        if not rows:
            return stats
        rows = list(rows)
        if self.faults.cfg.webhook_reorder and len(rows) > 1:
            self.faults.rng.shuffle(rows)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        for seq, event_id, body, attempts in rows:
            raw = body.encode()
            copies = 2 if self.faults.chance(self.faults.cfg.webhook_duplicate_rate) else 1
            ok = False
            err = ""
            for _ in range(copies):
                stats["attempted"] += 1
                ts = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign_webhook(self.secret, event_id, ts, raw),
                    "user-agent": f"d2r-{self.source}-simulator",
                }
                try:
                    r = await self._http.post(url, content=raw, headers=headers)
                    if 200 <= r.status_code < 300:
                        ok = True
                    else:
                        err = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    err = f"{type(e).__name__}: {e}"
            with self.store.tx() as c:
                if ok:
                    stats["delivered"] += 1
                    c.execute("UPDATE outbox SET delivered_at=?, attempts=attempts+1 WHERE seq=?", (time.time(), seq))
                else:
                    stats["failed"] += 1
                    delay = min(60.0, 0.5 * (2 ** min(attempts, 7)))
                    c.execute(
                        "UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE seq=?",
                        (time.time() + delay, err[:500], seq),
                    )
        return stats

    def view(self) -> dict[str, Any]:
        c = self.store.conn
        total, pending = c.execute("SELECT COUNT(*), SUM(delivered_at IS NULL) FROM outbox").fetchone()
        events = [
            {"id": e, "type": t, "attempts": a, "delivered": d is not None, "last_error": le}
            for e, t, a, d, le in c.execute(
                "SELECT event_id, type, attempts, delivered_at, last_error FROM outbox ORDER BY seq DESC LIMIT 200"
            )
        ]
        return {"url": self.url, "total": total, "pending": pending or 0, "events": events}

    async def _loop(self) -> None:
        while True:
            try:
                stats = await self.deliver_due()
                if stats["attempted"] == 0:
                    await asyncio.sleep(self.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the dispatcher alive whatever happens
                traceback.print_exc()
                await asyncio.sleep(1)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
