"""The reusable base of every simulator: a Starlette app with the vendor request pipeline
(fault injection, auth hook, `reject` rules, vendor headers, the "response lost" fault),
the `/__admin` surface, tokens, and the webhook outbox.

A vendor simulator subclasses `BaseSimulator`, implements the hooks (`routes`,
`vendor_error`, `throttle_response`, `auth_error`, optionally `authenticate`,
`vendor_headers`, `generate_seed`) and is itself the ASGI app (`create_app(settings)`);
`simulators._serve.cli` serves it with uvicorn. See docs/simulators.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._faults import REJECT_CODES, FaultState
from ._http import HTTPError, Request, Response
from ._jwt import ReplayGuard, load_public_key
from ._settings import SimSettings
from ._store import Store
from ._webhooks import WebhookOutbox

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# ASGI scope extension set by simulators._serve's uvicorn protocol: {"abort": transport.abort}.
# The "response lost" fault uses it to drop the connection with no response at all.
ABORT_EXTENSION = "d2r.connection"

Handler = Callable[..., Awaitable[Response]]


class BaseSimulator:
    """Subclasses implement the hooks below; the instance is the ASGI app."""

    name = "sim"
    token_paths: tuple[str, ...] = ()  # OAuth token endpoints: no bearer check, no API usage
    # (record type, SQL expression of the business key, label): two records with the
    # same key represent the same business fact, which /__admin/duplicates reports.
    business_keys: Sequence[tuple[str, str, str]] = ()

    def __init__(self, settings: SimSettings, extra_indexes: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.store = Store(settings.db, extra_indexes)
        self.faults = FaultState(settings.faults)
        self.outbox = WebhookOutbox(self.name, self.store, self.faults, settings)
        self.api_usage = 0
        self.seed_info_cached: dict[str, Any] = {}
        self._tokens: dict[str, float] = {}
        self._registered_key: PublicKeyTypes | None = None
        self.replays = ReplayGuard()
        self._app: ASGIApp | None = None

    # ---- hooks --------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The vendor API: `self.route(path, handler, method)` entries, most used first."""
        return []

    def vendor_error(self, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
        raise NotImplementedError

    def throttle_response(self) -> Response:
        raise NotImplementedError

    def auth_error(self) -> Response:
        raise NotImplementedError

    def authenticate(self, req: Request) -> Response | None:
        """Return an error response when the request is not authorised (default: a bearer
        token this simulator issued and that has not expired)."""
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or not self.token_valid(token):
            return self.auth_error()
        return None

    def vendor_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        """Headers the vendor adds to every API response (e.g. Salesforce's limit info)."""
        return []

    def generate_seed(self, kind: str) -> dict[str, Any]:
        """Write the vendor's seed data; returns what /__admin/seed-info shows."""
        return {}

    async def dispatch(self, req: Request, handler: Handler, params: dict[str, str]) -> Response:
        """Run one matched handler (NetSuite overrides it for `Prefer: respond-async`)."""
        return await self.invoke(req, handler, params)

    # ---- routing --------------------------------------------------------------------
    def route(self, path: str, handler: Handler, *methods: str) -> Route:
        """A Starlette route to `handler`, whose path parameters arrive percent-decoded (the
        app routes on the raw path, so an encoded "/" stays inside its segment)."""
        return VendorRoute(self, path, handler, methods)

    async def invoke(self, req: Request, handler: Handler, params: dict[str, str]) -> Response:
        try:
            return await handler(req, **params)
        except HTTPError as e:
            return e.response
        except json.JSONDecodeError as e:
            return self.vendor_error(400, "JSON_PARSER_ERROR", f"Invalid JSON: {e}")
        except Exception as e:  # a bug in the simulator: answer like a vendor 500
            traceback.print_exc()
            return self.vendor_error(500, "UNKNOWN_EXCEPTION", f"{type(e).__name__}: {e}")

    @property
    def app(self) -> ASGIApp:
        """Starlette's Router behind the vendor pipeline. No Starlette() wrapper: its error
        middlewares would only repeat what `invoke` and `VendorRoute` already answer, at
        a cost per request the benchmark sees."""
        if self._app is None:
            from ._admin import admin_routes

            router = Router(
                routes=[*self.routes(), Mount("/__admin", routes=admin_routes(self))],
                default=self._not_found,
                lifespan=self._lifespan,
            )
            self._app = VendorPipeline(router, self)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            resp = self.vendor_error(404, "NOT_FOUND", "The requested resource does not exist")
            await resp(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, app: object) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        self.outbox.start()

    async def shutdown(self) -> None:
        await self.outbox.stop()
        self.store.close()

    # ---- the vendor pipeline, before the handler ---------------------------------------
    async def admit(self, req: Request, body: bytes) -> Response | None:
        """Faults, auth and `reject` rules, in the order a vendor's edge applies them; a
        response here means the handler does not run."""
        f = self.faults
        cfg = f.cfg
        if cfg.max_concurrency and f.inflight > cfg.max_concurrency:
            return self.throttle_response()
        if cfg.outage_until and cfg.outage_until > time.time():
            retry = max(1, int(cfg.outage_until - time.time()))
            return self.vendor_error(503, "SERVER_UNAVAILABLE", "Service unavailable (simulated outage)", retry)
        if cfg.latency_ms or cfg.latency_jitter_ms:
            delay = cfg.latency_ms + (f.rng.random() * cfg.latency_jitter_ms if cfg.latency_jitter_ms else 0)
            await asyncio.sleep(delay / 1000)
        if f.throttle_left > 0:
            f.throttle_left -= 1
            return self.throttle_response()
        if f.chance(cfg.throttle_rate):
            return self.throttle_response()
        if f.chance(cfg.error_rate):
            return self.vendor_error(cfg.error_status, "UNKNOWN_EXCEPTION", "Simulated server error")
        path = req.scope["path"]
        if path in self.token_paths:
            return None
        err = self.authenticate(req)
        if err is not None:
            return err
        self.api_usage += 1
        rule = f.rejection(req.method, path, body)
        if rule is not None:  # refused for good, before the handler changes anything
            code = rule.code or REJECT_CODES.get(self.name, "INVALID_REQUEST")
            return self.vendor_error(rule.status, code, rule.message)
        return None

    # ---- tokens -------------------------------------------------------------------
    def registered_key(self) -> PublicKeyTypes | None:
        """The integration's certificate (read once; None while it does not exist)."""
        if self._registered_key is None and os.path.exists(self.settings.jwt_certificate):
            self._registered_key = load_public_key(self.settings.jwt_certificate)
        return self._registered_key

    def issue_token(self, token: str) -> float:
        ttl = self.faults.cfg.token_ttl
        if ttl is None:
            ttl = self.settings.token_ttl
        exp = time.time() + ttl
        self._tokens[token] = exp
        with self.store.tx():
            self.store.save_token(token, exp)
        return ttl

    def token_valid(self, token: str) -> bool:
        exp = self._tokens.get(token)
        if exp is None:
            exp = self.store.token_expiry(token)
            if exp is None:
                return False
            self._tokens[token] = exp
        return exp > time.time()

    def expire_tokens(self) -> None:
        for t in self._tokens:
            self._tokens[t] = 0
        with self.store.tx():
            self.store.expire_all_tokens()

    # ---- seed data, duplicates, events ---------------------------------------------
    def seed(self, kind: str) -> dict[str, Any]:
        info = self.generate_seed(kind)
        with self.store.tx():
            self.store.set_meta("seed_info", json.dumps(info))
        self.seed_info_cached = info
        return info

    def ensure_seeded(self) -> dict[str, Any]:
        """Seed only into an empty database; otherwise return the stored seed info."""
        if self.store.is_empty() and self.settings.seed not in ("none", ""):
            return self.seed(self.settings.seed)
        raw = self.store.get_meta("seed_info")
        self.seed_info_cached = json.loads(raw) if raw else {"seed": "none"}
        return self.seed_info_cached

    def duplicates(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for record_type, expr, label in self.business_keys:
            groups = self.store.duplicate_groups(record_type, expr)
            if groups:
                out[f"{record_type}.{label}"] = groups
        return out

    def emit(self, etype: str, data: dict[str, Any], key: str) -> None:
        """Queue an outbound webhook event inside the caller's write transaction."""
        self.outbox.emit(etype, data, key)


class VendorRoute(Route):
    """A route whose endpoint is a vendor handler and whose 405 is the vendor's error."""

    def __init__(self, sim: BaseSimulator, path: str, handler: Handler, methods: Sequence[str]) -> None:
        self.sim = sim
        self.handler = handler
        super().__init__(path, self._endpoint, methods=list(methods))
        self.app = self._endpoint  # raw ASGI: no request_response wrapper

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = Request(scope, receive)
        params = {k: unquote(v) for k, v in scope["path_params"].items()}
        resp = await self.sim.dispatch(req, self.handler, params)
        await resp(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            msg = f"HTTP Method '{scope['method']}' not allowed"
            resp = self.sim.vendor_error(405, "METHOD_NOT_ALLOWED", msg)
            resp.headers["allow"] = ", ".join(sorted(self.methods))
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


class VendorPipeline:
    """Raw ASGI middleware (no per-request task or body copy beyond one buffer): every
    vendor request passes `BaseSimulator.admit`, gets the vendor's headers, and may be
    slowed or have its response lost; `/__admin` passes straight through."""

    def __init__(self, app: ASGIApp, sim: BaseSimulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # route on the raw (still percent-encoded) path, without a trailing slash
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        scope["path"] = path
        if path.startswith("/__admin"):
            await self.app(scope, receive, send)
            return
        sim = self.sim
        faults = sim.faults
        body = await _read_body(receive)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        cfg = faults.cfg
        may_lose = scope["method"] in WRITE_METHODS and path not in sim.token_paths and cfg.response_lost_rate > 0
        lost = False

        async def send_vendor(msg: Message) -> None:
            nonlocal lost
            if msg["type"] == "http.response.start":
                if may_lose and msg["status"] < 300 and faults.chance(cfg.response_lost_rate):
                    lost = True  # the write committed; the client never hears of it
                    return
                extra = sim.vendor_headers(path)  # after admit: counts this request
                if extra:
                    msg = {**msg, "headers": [*msg.get("headers", ()), *extra]}
                if cfg.slow_rate and cfg.slow_delay_s and faults.chance(cfg.slow_rate):
                    await asyncio.sleep(cfg.slow_delay_s)
            elif lost:
                return
            await send(msg)

        faults.inflight += 1
        try:
            early = await sim.admit(Request(scope, replay), body)
            if early is not None:
                await early(scope, replay, send_vendor)
                return
            await self.app(scope, replay, send_vendor)
        finally:
            faults.inflight -= 1
        if lost:
            await self._lose(scope, receive, send)

    async def _lose(self, scope: Scope, receive: Receive, send: Send) -> None:
        cfg = self.sim.faults.cfg
        if cfg.response_lost_delay_s:
            await asyncio.sleep(cfg.response_lost_delay_s)
        abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION, {}).get("abort")
        if abort is not None:
            abort()  # RST: the client sees the connection drop, no status line at all
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        # a server without the extension (httpx.ASGITransport in tests) cannot drop the
        # connection: answer the gateway timeout a proxy would have sent instead
        lost = self.sim.vendor_error(504, "GATEWAY_TIMEOUT", "Upstream timed out (simulated lost response)")
        await lost(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
