"""Kantata OX-shaped PSA server (Starlette): `/api/v1/` JSON, OAuth2 bearer tokens,
pull-only subscribed events, and the vendor's hard edges (no idempotency keys, 429
without Retry-After, a request timeout, archived records hidden by default filters)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .._app import ABORT_EXTENSION
from .._faults import FaultState
from .._settings import SimSettings
from .._store import Store
from . import records
from .events import EVENTS_SCHEMA, Events
from .schema import TYPES, Invalid

API = "/api/v1"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class KantataSettings(SimSettings):
    request_timeout_s: float = Field(180, gt=0)  # Kantata answers 504 after 3 minutes
    events_retention_days: float = Field(9, gt=0)
    event_lag_max_s: float = Field(2, ge=0)  # how late an event may be generated (reorder fault)


def k_error(status: int, message: str, kind: str = "system", field: str | None = None) -> JSONResponse:
    err: dict[str, Any] = {"type": kind, "message": message}
    if field:
        err["field"] = field
    return JSONResponse({"errors": [err]}, status)


class KantataSimulator:
    name = "kantata"

    def __init__(self, settings: KantataSettings) -> None:
        self.settings = settings
        self.store = Store(settings.db, EVENTS_SCHEMA)
        self.faults = FaultState(settings.faults)
        self.events = Events(self)
        self.api_usage = 0
        self.seed_info_cached: dict[str, Any] = {}
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)
        from .seed import ensure_seeded

        self.seed_info_cached = ensure_seeded(self)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.store.close()

    def _routes(self) -> list[Route]:
        from . import admin, handlers

        return [
            Route("/oauth/token", self._token, methods=["POST"]),
            Route(f"{API}/subscribed_events", self.events.list_route, methods=["GET"]),
            Route(f"{API}/subscribed_events.json", self.events.list_route, methods=["GET"]),
            Route(f"{API}/events", self.events.list_route, methods=["GET"]),  # d2r's short name for the same
            Route(f"{API}/{{resource}}", handlers.collection(self), methods=["GET", "POST"]),
            Route(f"{API}/{{resource}}/{{rid}}", handlers.member(self), methods=["GET", "PUT", "DELETE"]),
            *admin.routes(self),
        ]

    # ---- tokens ----------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        s = self.settings
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        token = secrets.token_urlsafe(24)
        ttl = self.faults.cfg.token_ttl if self.faults.cfg.token_ttl is not None else s.token_ttl
        with self.store.tx():
            self.store.save_token(token, time.time() + ttl)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": int(ttl)})

    def _authorised(self, scope: Scope) -> bool:
        for k, v in scope["headers"]:
            if k == b"authorization":
                raw = v.decode("latin-1")
                if raw[:7].lower() != "bearer ":
                    return False
                exp = self.store.token_expiry(raw[7:].strip())
                return exp is not None and exp > time.time()
        return False

    # ---- the fault pipeline (ASGI) ---------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/__admin"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        f = self.faults
        cfg = f.cfg
        if cfg.latency_ms or cfg.latency_jitter_ms:
            await asyncio.sleep((cfg.latency_ms + f.rng.random() * cfg.latency_jitter_ms) / 1000)
        early = self._early_fault(scope, path, body)
        if early is not None:
            await early(scope, receive, send)
            return
        self.api_usage += 1

        messages: list[Message] = []

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(msg: Message) -> None:
            messages.append(msg)

        async def run() -> None:
            if f.chance(cfg.slow_rate) and cfg.slow_delay_s:
                await asyncio.sleep(cfg.slow_delay_s)  # before any work: a timeout leaves nothing done
            try:
                await self.app(scope, replay, capture)
            except Exception as e:  # a simulator bug: answer like the vendor's 500
                traceback.print_exc()
                messages.clear()
                await k_error(500, f"{type(e).__name__}: {e}")(scope, replay, capture)

        try:
            await asyncio.wait_for(run(), self.settings.request_timeout_s)
        except TimeoutError:
            await k_error(504, "The request timed out")(scope, receive, send)
            return
        status = next((int(m["status"]) for m in messages if m["type"] == "http.response.start"), 500)
        if scope["method"] in WRITE_METHODS and path != "/oauth/token" and status < 300:
            if f.chance(cfg.response_lost_rate):
                await self._lose(scope, receive, send)
                return
        for m in messages:
            await send(m)

    async def _lose(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The write committed; the client hears nothing (the connection drops), or, where
        the server cannot drop it (in-process tests), a proxy's 504."""
        if self.faults.cfg.response_lost_delay_s:
            await asyncio.sleep(self.faults.cfg.response_lost_delay_s)
        abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION, {}).get("abort")
        if abort is not None:
            abort()
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await k_error(504, "Gateway timeout (simulated lost response)")(scope, receive, send)

    def _throttled(self) -> bool:
        f = self.faults
        if f.throttle_left > 0:
            f.throttle_left -= 1
            return True
        return f.chance(f.cfg.throttle_rate)

    def _early_fault(self, scope: Scope, path: str, body: bytes) -> Response | None:
        f = self.faults
        if f.cfg.outage_until and f.cfg.outage_until > time.time():
            return k_error(503, "Service unavailable (simulated outage)")
        if self._throttled():
            return k_error(429, "Rate limit exceeded")  # Kantata sends no Retry-After
        if f.chance(f.cfg.error_rate):
            return k_error(f.cfg.error_status, "Simulated server error")
        if path == "/oauth/token":
            return None
        if not self._authorised(scope):
            return k_error(401, "Invalid or expired OAuth token", "authentication")
        rule = f.rejection(scope["method"], path, body)
        if rule is not None:
            return k_error(rule.status, rule.message, "validation")
        return None

    # ---- store helpers used by handlers, events and seed -----------------------------
    def insert(self, rtype: str, data: dict[str, Any], event: bool = True) -> dict[str, Any]:
        """Insert inside the caller's transaction; assigns id and timestamps."""
        rid = str(self.store.next_counter(rtype) + records.ID_BASE.get(rtype, 1000))
        now = records.now_iso()
        rec = {"id": rid, **data, "created_at": now, "updated_at": now}
        self.store.insert(rtype, rid, rec)
        if event and TYPES[rtype].events:
            self.events.record(rtype, "created", rec)
        return rec

    def update(self, rtype: str, rec: dict[str, Any], event: bool = True) -> dict[str, Any]:
        rec = {**rec, "updated_at": records.now_iso()}
        self.store.update(rtype, rec["id"], rec)
        if event and TYPES[rtype].events:
            self.events.record(rtype, "updated", rec)
        return rec

    def delete(self, rtype: str, rec: dict[str, Any]) -> None:
        self.store.delete(rtype, rec["id"])
        if TYPES[rtype].events:
            self.events.record(rtype, "deleted", rec)

    def all(self, rtype: str) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.store.conn.execute("SELECT data FROM records WHERE type=?", (rtype,))]

    def set_faults(self, body: Any, replace: bool) -> Response:
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, 400)
        try:
            self.faults.update(body, replace=replace)
        except ValidationError as e:
            return JSONResponse({"error": "invalid fault config", "details": json.loads(e.json())}, 400)
        if body.get("expire_tokens"):
            with self.store.tx():
                self.store.expire_all_tokens()
        return JSONResponse(self.faults.view())


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


def create_app(settings: SimSettings | None = None) -> KantataSimulator:
    if settings is None:
        return KantataSimulator(KantataSettings())
    if not isinstance(settings, KantataSettings):
        settings = KantataSettings(**settings.model_dump())
    return KantataSimulator(settings)


__all__ = ["Invalid", "KantataSettings", "KantataSimulator", "create_app"]
