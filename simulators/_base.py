"""The request pipeline shared by the simulators: auth hook, fault injection, admin
surface (`/__admin/...`), outbound webhooks (Standard Webhooks, outbox in SQLite)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import random
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import httpx
from pydantic import ValidationError

from ._asgi import (
    HTTPError,
    Receive,
    Request,
    Response,
    Router,
    Scope,
    Send,
    build_request,
    json_response,
    read_body,
    send_response,
)
from ._server import DROP_HEADER
from ._settings import FaultConfig, RejectRule, SimSettings
from ._store import Store

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# The error code a `reject` fault answers with when the rule names none: each vendor's
# usual validation failure (a 400 the connectors treat as non-retryable).
REJECT_CODES = {"salesforce": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "netsuite": "USER_ERROR"}


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks v1 signature: base64 HMAC-SHA256 of "{id}.{ts}.{body}"."""
    key_b64 = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    key = base64.b64decode(key_b64)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class FaultState:
    def __init__(self, cfg: FaultConfig) -> None:
        self.start_cfg = cfg
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.throttle_left = cfg.throttle_burst
        self.inflight = 0
        self.rejected = [0] * len(cfg.reject)  # calls refused so far, per `reject` rule
        if cfg.outage_seconds and not cfg.outage_until:
            self.cfg = cfg.model_copy(update={"outage_until": time.time() + cfg.outage_seconds})

    def update(self, patch: dict[str, Any], replace: bool = False) -> FaultConfig:
        base = {} if replace else self.cfg.model_dump()
        base.update(patch)
        base.pop("expire_tokens", None)
        cfg = FaultConfig.model_validate(base)
        if "outage_seconds" in patch:
            secs = float(patch["outage_seconds"] or 0)
            cfg = cfg.model_copy(update={"outage_until": time.time() + secs if secs else 0, "outage_seconds": 0})
        if "seed" in patch or replace:
            self.rng = random.Random(cfg.seed)
        if "throttle_burst" in patch or replace:
            self.throttle_left = cfg.throttle_burst
        if "reject" in patch or replace:
            self.rejected = [0] * len(cfg.reject)
        self.cfg = cfg
        return cfg

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def view(self) -> dict[str, Any]:
        d = self.cfg.model_dump()
        d["throttle_left"] = self.throttle_left
        d["inflight"] = self.inflight
        d["outage_active"] = self.cfg.outage_until > time.time()
        d["rejected"] = list(self.rejected)
        return d

    def rejection(self, req: Request) -> RejectRule | None:
        """The first `reject` rule the request matches (counted), if any. Rules see the
        percent-decoded path, so `eid:d2r:engagement-...` matches however a client encodes it."""
        if not self.cfg.reject:
            return None
        path = unquote(req.path)
        for index, rule in enumerate(self.cfg.reject):
            if rule.matches(req.method, path, req.body):
                self.rejected[index] += 1
                return rule
        return None


class BaseSimulator:
    """Subclasses fill `self.router` with vendor routes and implement the hooks."""

    name = "sim"
    token_paths: tuple[str, ...] = ()
    # (record type, SQL expression of the business key, label): two records with the
    # same key represent the same business fact, which /__admin/duplicates reports.
    business_keys: Sequence[tuple[str, str, str]] = ()

    def __init__(self, settings: SimSettings, extra_indexes: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.store = Store(settings.db, extra_indexes)
        self.router = Router()
        self.admin = Router()
        self.faults = FaultState(settings.faults)
        self.webhook_url = settings.webhook_url
        self.webhook_secret = settings.webhook_secret
        self.api_usage = 0
        self._tokens: dict[str, float] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._event_seq = 0
        self._install_admin()

    # ---- hooks --------------------------------------------------------------------
    def vendor_error(self, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
        raise NotImplementedError

    def throttle_response(self) -> Response:
        raise NotImplementedError

    def authenticate(self, req: Request) -> Response | None:
        """Return an error response when the request is not authorised."""
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or not self.token_valid(token):
            return self.auth_error()
        return None

    def auth_error(self) -> Response:
        raise NotImplementedError

    def decorate(self, req: Request, resp: Response) -> None:
        """Add vendor headers to every vendor response."""

    def generate_seed(self, kind: str) -> dict[str, Any]:
        """Write the vendor's seed data; returns what /__admin/seed-info shows."""
        return {}

    def seed(self, kind: str) -> dict[str, Any]:
        info = self.generate_seed(kind)
        with self.store.tx():
            self.store.set_meta("seed_info", json.dumps(info))
        self.seed_info_cached = info
        return info

    def duplicates(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for record_type, expr, label in self.business_keys:
            groups = self.store.duplicate_groups(record_type, expr)
            if groups:
                out[f"{record_type}.{label}"] = groups
        return out

    # ---- tokens -------------------------------------------------------------------
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

    # ---- events -------------------------------------------------------------------
    def emit(self, etype: str, data: dict[str, Any], key: str) -> None:
        """Queue an outbound event (inside the caller's write transaction).

        `key` names the business fact so the same fact is never queued twice."""
        event_id = "evt_" + hashlib.sha256(f"{self.name}:{etype}:{key}".encode()).hexdigest()[:24]
        body = {
            "type": etype,
            "id": event_id,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": self.name,
            "data": data,
        }
        self.store.enqueue_event(event_id, etype, body)

    async def deliver_due(self, force: bool = False) -> dict[str, int]:
        """One outbox pass: POST every due event; returns counts."""
        stats = {"attempted": 0, "delivered": 0, "failed": 0}
        url = self.webhook_url
        if not url:
            return stats
        now = time.time()
        rows = self.store.conn.execute(
            "SELECT seq, event_id, body, attempts FROM outbox WHERE delivered_at IS NULL "
            + ("" if force else "AND next_at <= ? ")
            + "ORDER BY seq LIMIT 100",
            () if force else (now,),
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
                    "webhook-signature": sign_webhook(self.webhook_secret, event_id, ts, raw),
                    "user-agent": f"d2r-{self.name}-simulator",
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
                    c.execute(
                        "UPDATE outbox SET delivered_at=?, attempts=attempts+1 WHERE seq=?",
                        (time.time(), seq),
                    )
                else:
                    stats["failed"] += 1
                    delay = min(60.0, 0.5 * (2 ** min(attempts, 7)))
                    c.execute(
                        "UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE seq=?",
                        (time.time() + delay, err[:500], seq),
                    )
        return stats

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                stats = await self.deliver_due()
                if stats["attempted"] == 0:
                    await asyncio.sleep(self.settings.webhook_poll_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive whatever happens
                traceback.print_exc()
                await asyncio.sleep(1)

    async def startup(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch_loop())

    async def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except (asyncio.CancelledError, Exception):
                pass
            self._dispatcher = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self.store.close()

    # ---- ASGI ---------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        req = build_request(scope, await read_body(receive))
        if req.path.startswith("/__admin"):
            resp = await self._dispatch(self.admin, req)
        else:
            resp = await self._vendor(req)
        await send_response(send, resp)

    async def _dispatch(self, router: Router, req: Request) -> Response:
        handler, params, seen = router.match(req.method, req.path)
        if handler is None:
            if seen:
                return self.vendor_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed")
            return self.vendor_error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            return await handler(req, **params)
        except HTTPError as e:
            return e.response
        except json.JSONDecodeError as e:
            return self.vendor_error(400, "JSON_PARSER_ERROR", f"Invalid JSON: {e}")

    async def _vendor(self, req: Request) -> Response:
        f = self.faults
        cfg = f.cfg
        f.inflight += 1
        try:
            if cfg.max_concurrency and f.inflight > cfg.max_concurrency:
                resp = self.throttle_response()
                self.decorate(req, resp)
                return resp
            if cfg.outage_until and cfg.outage_until > time.time():
                retry = max(1, int(cfg.outage_until - time.time()))
                resp = self.vendor_error(503, "SERVER_UNAVAILABLE", "Service unavailable (simulated outage)", retry)
                self.decorate(req, resp)
                return resp
            if cfg.latency_ms or cfg.latency_jitter_ms:
                delay = cfg.latency_ms + (f.rng.random() * cfg.latency_jitter_ms if cfg.latency_jitter_ms else 0)
                await asyncio.sleep(delay / 1000)
            if f.throttle_left > 0:
                f.throttle_left -= 1
                resp = self.throttle_response()
                self.decorate(req, resp)
                return resp
            if f.chance(cfg.throttle_rate):
                resp = self.throttle_response()
                self.decorate(req, resp)
                return resp
            if f.chance(cfg.error_rate):
                resp = self.vendor_error(cfg.error_status, "UNKNOWN_EXCEPTION", "Simulated server error")
                self.decorate(req, resp)
                return resp
            if req.path not in self.token_paths:
                err = self.authenticate(req)
                if err is not None:
                    self.decorate(req, err)
                    return err
            if req.path not in self.token_paths:
                self.api_usage += 1
                rule = f.rejection(req)
                if rule is not None:  # refused for good, before the handler changes anything
                    resp = self.vendor_error(
                        rule.status, rule.code or REJECT_CODES.get(self.name, "INVALID_REQUEST"), rule.message
                    )
                    self.decorate(req, resp)
                    return resp
            try:
                resp = await self._dispatch(self.router, req)
            except Exception as e:  # a bug in the simulator: answer like a vendor 500
                traceback.print_exc()
                resp = self.vendor_error(500, "UNKNOWN_EXCEPTION", f"{type(e).__name__}: {e}")
            self.decorate(req, resp)
            if (
                req.method in WRITE_METHODS
                and req.path not in self.token_paths
                and resp.status < 300
                and f.chance(cfg.response_lost_rate)
            ):
                if cfg.response_lost_delay_s:
                    await asyncio.sleep(cfg.response_lost_delay_s)
                lost = self.vendor_error(504, "GATEWAY_TIMEOUT", "Upstream timed out (simulated lost response)")
                # the built-in server drops the connection instead of sending this 504
                lost.headers.append((DROP_HEADER, "1"))
                return lost
            if f.chance(cfg.slow_rate) and cfg.slow_delay_s:
                await asyncio.sleep(cfg.slow_delay_s)
            return resp
        finally:
            f.inflight -= 1

    # ---- admin --------------------------------------------------------------------
    def _install_admin(self) -> None:
        a = self.admin
        a.add("GET", r"/__admin/health", self._a_health)
        a.add("GET", r"/__admin/counts", self._a_counts)
        a.add("GET", r"/__admin/duplicates", self._a_duplicates)
        a.add("POST", r"/__admin/reset", self._a_reset)
        a.add("GET", r"/__admin/records/(?P<rtype>[^/]+)", self._a_records)
        a.add("GET", r"/__admin/faults", self._a_faults_get)
        a.add("POST", r"/__admin/faults", self._a_faults_set)
        a.add("PUT", r"/__admin/faults", self._a_faults_replace)
        a.add("DELETE", r"/__admin/faults", self._a_faults_clear)
        a.add("GET", r"/__admin/seed-info", self._a_seed_info)
        a.add("GET", r"/__admin/webhooks", self._a_webhooks_get)
        a.add("POST", r"/__admin/webhooks", self._a_webhooks_set)
        a.add("POST", r"/__admin/webhooks/flush", self._a_webhooks_flush)
        a.add("POST", r"/__admin/tokens/expire", self._a_tokens_expire)

    async def _a_health(self, req: Request) -> Response:
        return json_response({"status": "ok", "simulator": self.name, "instance": self.settings.instance})

    async def _a_counts(self, req: Request) -> Response:
        return json_response(self.store.counts())

    async def _a_duplicates(self, req: Request) -> Response:
        d = self.duplicates()
        return json_response({"count": sum(len(v) for v in d.values()), "duplicates": d})

    async def _a_reset(self, req: Request) -> Response:
        body = req.json() or {}
        seed = str(body.get("seed", req.query.get("seed", "none")))
        self.store.reset()
        self._tokens.clear()
        self.api_usage = 0
        info = self.seed(seed)
        return json_response({"reset": True, "seed": seed, "seed_info": info})

    async def _a_records(self, req: Request, rtype: str) -> Response:
        limit = int(req.query.get("limit", "1000"))
        offset = int(req.query.get("offset", "0"))
        recs = self.store.dump(rtype, limit, offset)
        return json_response({"type": rtype, "count": len(recs), "offset": offset, "records": recs})

    async def _a_faults_get(self, req: Request) -> Response:
        return json_response(self.faults.view())

    async def _set_faults(self, req: Request, replace: bool) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict):
            return json_response({"error": "expected a JSON object"}, 400)
        try:
            self.faults.update(body, replace=replace)
        except ValidationError as e:
            return json_response({"error": "invalid fault config", "details": json.loads(e.json())}, 400)
        if body.get("expire_tokens"):
            self.expire_tokens()
        return json_response(self.faults.view())

    async def _a_faults_set(self, req: Request) -> Response:
        return await self._set_faults(req, replace=False)

    async def _a_faults_replace(self, req: Request) -> Response:
        return await self._set_faults(req, replace=True)

    async def _a_faults_clear(self, req: Request) -> Response:
        self.faults.update({}, replace=True)
        return json_response(self.faults.view())

    async def _a_seed_info(self, req: Request) -> Response:
        raw = self.store.get_meta("seed_info")
        return json_response(json.loads(raw) if raw else {"seed": "none"})

    async def _a_webhooks_get(self, req: Request) -> Response:
        c = self.store.conn
        total, pending = c.execute("SELECT COUNT(*), SUM(delivered_at IS NULL) FROM outbox").fetchone()
        events = [
            {"id": e, "type": t, "attempts": a, "delivered": d is not None, "last_error": le}
            for e, t, a, d, le in c.execute(
                "SELECT event_id, type, attempts, delivered_at, last_error FROM outbox ORDER BY seq DESC LIMIT 200"
            )
        ]
        return json_response({"url": self.webhook_url, "total": total, "pending": pending or 0, "events": events})

    async def _a_webhooks_set(self, req: Request) -> Response:
        body = req.json() or {}
        if "url" in body:
            self.webhook_url = body["url"] or None
        if body.get("secret"):
            self.webhook_secret = str(body["secret"])
        return json_response({"url": self.webhook_url})

    async def _a_webhooks_flush(self, req: Request) -> Response:
        return json_response(await self.deliver_due(force=True))

    async def _a_tokens_expire(self, req: Request) -> Response:
        self.expire_tokens()
        return json_response({"expired": True})


def ensure_seeded(sim: BaseSimulator) -> dict[str, Any]:
    """Seed only into an empty database; otherwise return the stored seed info."""
    if sim.store.is_empty() and sim.settings.seed not in ("none", ""):
        return sim.seed(sim.settings.seed)
    raw = sim.store.get_meta("seed_info")
    return json.loads(raw) if raw else {"seed": "none"}


def cli(
    prog: str,
    create: Any,
    default_port: int,
    default_db: str,
    argv: list[str] | None = None,
) -> None:
    """Parse the common command line, build the app and serve it with uvicorn."""
    import uvicorn

    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int)
    p.add_argument("--db", help=f"SQLite file (default {default_db})")
    p.add_argument("--seed", help="demo | none | bench")
    p.add_argument("--opportunities", type=int, help="bench seed size")
    p.add_argument("--time-entries", type=int, help="bench seed size")
    p.add_argument("--instance", help="instance name (several NetSuite instances)")
    p.add_argument("--subsidiaries", help="NetSuite: legal entities to seed, e.g. US01,UK01")
    p.add_argument("--token-ttl", type=float)
    p.add_argument("--page-size", type=int)
    p.add_argument("--daily-limit", type=int)
    p.add_argument("--webhook-url")
    p.add_argument("--webhook-secret")
    p.add_argument("--public-url")
    p.add_argument("--faults", help='JSON, e.g. \'{"latency_ms": 50, "error_rate": 0.1}\'')
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--server",
        choices=("builtin", "uvicorn"),
        help="HTTP server (default builtin; uvicorn is slower without httptools)",
    )
    a = p.parse_args(argv)
    over: dict[str, Any] = {}
    for k, sk in (
        ("host", "host"), ("port", "port"), ("db", "db"), ("seed", "seed"),
        ("opportunities", "seed_opportunities"), ("time_entries", "seed_time_entries"),
        ("instance", "instance"), ("subsidiaries", "subsidiaries"), ("token_ttl", "token_ttl"),
        ("page_size", "page_size"), ("daily_limit", "daily_limit"),
        ("webhook_url", "webhook_url"), ("webhook_secret", "webhook_secret"),
        ("public_url", "public_url"),
    ):  # fmt: skip
        v = getattr(a, k)
        if v is not None:
            over[sk] = v
    if a.faults:
        over["faults"] = json.loads(a.faults)
    if a.quiet:
        over["quiet"] = True
    settings = SimSettings(**over)
    if "port" not in over and settings.port == 0:
        settings.port = default_port
    if "db" not in over and settings.db == ":memory:":
        settings.db = default_db.format(instance=settings.instance)
    app = create(settings)
    info = app.seed_info_cached
    if not settings.quiet:
        print(
            f"{prog}: listening on http://{settings.host}:{settings.port} db={settings.db} "
            f"instance={settings.instance}",
            flush=True,
        )
        print(f"{prog}: seed-info " + json.dumps(info, indent=None), flush=True)
    sys.stdout.flush()
    if (a.server or settings.server) == "builtin":
        from ._server import run

        run(app, settings.host, settings.port)
        return
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
