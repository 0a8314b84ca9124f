"""Dynamics 365 Finance-shaped server on Starlette: Microsoft identity platform tokens,
OData v4 data entities under `/data/`, `$batch` change sets, ETags, throttling, and the
shared fault injection and `/__admin` inspection."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .._faults import FaultState
from .._store import Store
from . import batch, odata
from .entities import BUSINESS_KEYS, ENTITY_SETS, NAMESPACE, EntitySet
from .posting import Posting
from .service import ODataFailure, Service, bad_request
from .settings import DynamicsSettings

WRITES = {"POST", "PATCH", "PUT", "DELETE"}
_INDEXED = ("dataAreaId", "D2RReference", "D2ROpportunityId", "SalesOrderNumber", "FreeTextNumber",
            "JournalBatchNumber", "CustomerAccount", "Invoice", "InvoiceId")  # fmt: skip
INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS dyn_{name.lower()}{suffix} ON records(type, json_extract(data,'$.{name}'){collate})"
    for name in _INDEXED
    for suffix, collate in (("", ""), ("_nocase", " COLLATE NOCASE"))
)
_PATH_RX = re.compile(r"^(?P<set>[A-Za-z0-9_]+)(?:\((?P<key>.*)\))?(?:/(?P<tail>[^/()']+))?$")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Lost(Exception):
    """Raised after the response has started: the server drops the connection."""


class LostResponse(Response):
    """The write committed; the client never hears about it (connection closed mid-answer)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise Lost("simulated lost response")


class DynamicsSimulator:
    name = "dynamics"

    def __init__(self, settings: DynamicsSettings) -> None:
        self.settings = settings
        self.store = Store(settings.db, INDEXES)
        companies = settings.company_list()
        self.service = Service(self.store, companies, companies[0])
        self.posting = Posting(self.service)
        self.faults = FaultState(settings.faults)
        self.api_usage = 0
        self._tokens: dict[str, float] = {}
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)
        from .seed import ensure_seeded

        self.seed_info_cached = ensure_seeded(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.store.close()

    def _routes(self) -> list[Route]:
        admin = [
            Route("/__admin/health", self.a_health, methods=["GET"]),
            Route("/__admin/counts", self.a_counts, methods=["GET"]),
            Route("/__admin/duplicates", self.a_duplicates, methods=["GET"]),
            Route("/__admin/reset", self.a_reset, methods=["POST"]),
            Route("/__admin/records/{rtype}", self.a_records, methods=["GET"]),
            Route("/__admin/faults", self.a_faults, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/__admin/seed-info", self.a_seed_info, methods=["GET"]),
            Route("/__admin/tokens/expire", self.a_tokens_expire, methods=["POST"]),
        ]
        return [
            *admin,
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/data", self.data, methods=["GET"]),
            Route("/data/{rest:path}", self.data, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        ]

    # ---- tokens (Microsoft identity platform, client credentials) ---------------------
    def _aad_error(self, status: int, error: str, code: int, description: str) -> Response:
        trace = str(uuid.uuid4())
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {uuid.uuid4()}"
            f"\r\nTimestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
        return Response(_json(body), status, media_type="application/json; charset=utf-8")

    async def token(self, request: Request) -> Response:
        return await self._guarded(request, self._token, token_call=True)

    async def _token(self, request: Request, body: bytes) -> Response:
        tenant = request.path_params["tenant"]
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        s = self.settings
        if tenant.lower() != s.tenant.lower():
            return self._aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != s.client_id:
            return self._aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the directory '{tenant}'.",
            )
        if form.get("client_secret") != s.client_secret:
            return self._aad_error(
                401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret ID."
            )  # fmt: skip
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return self._aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scope[: -len("/.default")].rstrip("/")
        if resource != s.resource_url():
            return self._aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant}.",
            )
        ttl = self.faults.cfg.token_ttl if self.faults.cfg.token_ttl is not None else s.token_ttl
        now = int(time.time())
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "iat": now, "nbf": now,
                  "exp": int(now + ttl), "appid": s.client_id, "tid": tenant, "idtyp": "app",
                  "jti": secrets.token_urlsafe(8)}  # fmt: skip
        token = ".".join(
            base64.urlsafe_b64encode(part).rstrip(b"=").decode()
            for part in (
                _json({"typ": "JWT", "alg": "RS256", "kid": "d2r-sim"}),
                _json(claims),
                secrets.token_bytes(64),
            )
        )
        self._tokens[token] = now + ttl
        with self.store.tx():
            self.store.save_token(token, now + ttl)
        body_out = {"token_type": "Bearer", "expires_in": int(ttl), "ext_expires_in": int(ttl), "access_token": token}
        return Response(_json(body_out), 200, media_type="application/json; charset=utf-8")

    def _token_valid(self, token: str) -> bool:
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

    # ---- the request pipeline: faults, auth, rejections ---------------------------------
    def _error(self, failure: ODataFailure, headers: dict[str, str] | None = None) -> Response:
        return Response(
            _json(failure.body()),
            failure.status,
            headers=headers,
            media_type="application/json; odata.metadata=minimal",
        )

    def _throttled(self) -> Response:
        wait = self.faults.cfg.retry_after_s
        return self._error(
            ODataFailure(429, f"Too many requests: the request was throttled. Retry after {wait} seconds."),
            {"Retry-After": str(wait)},
        )

    async def _guarded(self, request: Request, handler: Any, *, token_call: bool = False) -> Response:
        f = self.faults
        cfg = f.cfg
        f.inflight += 1
        try:
            if cfg.max_concurrency and f.inflight > cfg.max_concurrency:
                return self._throttled()
            if cfg.outage_until and cfg.outage_until > time.time():
                retry = max(1, int(cfg.outage_until - time.time()))
                return self._error(
                    ODataFailure(503, "The service is unavailable (simulated outage)."), {"Retry-After": str(retry)}
                )
            if cfg.latency_ms or cfg.latency_jitter_ms:
                await asyncio.sleep((cfg.latency_ms + f.rng.random() * cfg.latency_jitter_ms) / 1000)
            if f.throttle_left > 0:
                f.throttle_left -= 1
                return self._throttled()
            if f.chance(cfg.throttle_rate):
                return self._throttled()
            if f.chance(cfg.error_rate):
                return self._error(ODataFailure(cfg.error_status, "An error has occurred (simulated server error)."))
            body = await request.body()
            if not token_call:
                auth = request.headers.get("authorization", "")
                token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
                if not token or not self._token_valid(token):
                    return Response(
                        b"",
                        401,
                        headers={
                            "WWW-Authenticate": 'Bearer error="invalid_token", '
                            'error_description="The access token is missing, invalid or expired"'
                        },
                    )
                self.api_usage += 1
                raw_path = request.scope.get("raw_path", b"").decode().split("?", 1)[0]
                rule = f.rejection(request.method, raw_path, body)
                if rule is not None:
                    return self._error(
                        ODataFailure(rule.status, "An error has occurred.", rule.message, code=rule.code or "")
                    )
            response: Response = await handler(request, body)
            if (
                not token_call
                and request.method in WRITES
                and response.status_code < 300
                and f.chance(cfg.response_lost_rate)
            ):
                if cfg.response_lost_delay_s:
                    await asyncio.sleep(cfg.response_lost_delay_s)
                if self.settings.drop_lost_responses:
                    return LostResponse()
                return self._error(ODataFailure(504, "The gateway timed out (simulated lost response)."))
            if f.chance(cfg.slow_rate) and cfg.slow_delay_s:
                await asyncio.sleep(cfg.slow_delay_s)
            return response
        finally:
            f.inflight -= 1

    # ---- /data ----------------------------------------------------------------------------
    async def data(self, request: Request) -> Response:
        return await self._guarded(request, self._data)

    async def _data(self, request: Request, body: bytes) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if path.rstrip("/") == "/data/$batch":
            if request.method != "POST":
                return self._error(ODataFailure(405, "The $batch endpoint only accepts POST."))
            return self._batch(headers, body)
        sub = batch.SubRequest(request.method, path, query, headers, body)
        try:
            if request.method in WRITES:
                with self.store.tx():
                    resp = self.execute(sub)
            else:
                resp = self.execute(sub)
        except ODataFailure as failure:
            return self._error(failure)
        return Response(resp.body, resp.status, headers=dict(resp.headers))

    def execute(self, req: batch.SubRequest, content_ids: dict[str, str] | None = None) -> batch.SubResponse:
        """One OData request (top level or inside a batch). Raises ODataFailure."""
        path = req.path
        if content_ids and path.startswith("$"):
            ref, _, rest = path[1:].partition("/")
            if ref not in content_ids:
                raise bad_request(f"The Content-ID reference '${ref}' is unknown in this change set.")
            path = content_ids[ref] + ("/" + rest if rest else "")
        rest_path = unquote(path.split("/data", 1)[1].lstrip("/")) if "/data" in path else ""
        ieee754 = (
            "ieee754compatible=true" in (req.headers.get("accept", "") + req.headers.get("content-type", "")).lower()
        )
        if rest_path in ("", "/"):
            return self._service_document()
        if rest_path == "$metadata":
            return self._metadata()
        m = _PATH_RX.match(rest_path)
        if m is None:
            raise ODataFailure(404, f"No HTTP resource was found that matches the request URI '{path}'.")
        es = self.service.entity_set(m.group("set"))
        key_text, tail = m.group("key"), m.group("tail")
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        try:
            key = odata.parse_key(es, key_text) if key_text is not None else None
        except odata.ODataError as e:
            raise bad_request(str(e)) from e
        if key is not None and "dataAreaId" in key:
            key["dataAreaId"] = key["dataAreaId"].lower()
        method = req.method
        if tail == "$count" and key is None and method == "GET":
            _records, total, _ = self.service.query(
                es, filter_text=q.get("$filter"), orderby=None, cross_company=_cross(q), offset=0, limit=0,
                want_count=True,
            )  # fmt: skip
            return batch.SubResponse(200, [("Content-Type", "text/plain")], str(total).encode())
        if tail is not None:
            action = tail.removeprefix(NAMESPACE + ".")
            if key is None or method != "POST" or action not in es.actions:
                raise ODataFailure(404, f"No HTTP resource was found that matches the request URI '{path}'.")
            result = self.posting.run(es.name, key)
            value = next(iter(result.values()))
            return self._json(200, {"@odata.context": f"{self._root()}/$metadata#Edm.String", "value": value})
        if key is None:
            if method == "GET":
                return self._collection(es, q, req.headers, ieee754)
            if method == "POST":
                rec = self.service.create(es, _load(req.body))
                location = f"{self._root()}/{es.name}({odata.key_text(es, rec)})"
                hdrs = [("Location", location), ("ETag", Service.etag(rec)), ("OData-EntityId", location)]
                if "return=minimal" in req.headers.get("prefer", ""):
                    return batch.SubResponse(204, [*hdrs, ("Preference-Applied", "return=minimal")], b"")
                return self._entity(201, es, rec, None, ieee754, hdrs)
            raise ODataFailure(405, f"The HTTP method '{method}' is not allowed on the entity set '{es.name}'.")
        if method == "GET":
            rec = self.service.must_get(es, key)
            try:
                select = odata.parse_select(es, q.get("$select"))
            except odata.ODataError as e:
                raise bad_request(str(e)) from e
            return self._entity(200, es, rec, select, ieee754, [("ETag", Service.etag(rec))])
        if method in ("PATCH", "PUT"):
            rec = self.service.update(es, key, _load(req.body), req.headers.get("if-match"))
            return batch.SubResponse(204, [("ETag", Service.etag(rec))], b"")
        if method == "DELETE":
            self.service.delete(es, key, req.headers.get("if-match"))
            return batch.SubResponse(204, [], b"")
        raise ODataFailure(405, f"The HTTP method '{method}' is not allowed on '{es.name}'.")

    def _root(self) -> str:
        return self.settings.resource_url() + "/data"

    def _json(self, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> batch.SubResponse:
        hdrs = [("Content-Type", "application/json; odata.metadata=minimal"), ("OData-Version", "4.0")]
        return batch.SubResponse(status, hdrs + (headers or []), _json(obj))

    def _entity(self, status: int, es: EntitySet, rec: dict[str, Any], select: list[str] | None, ieee754: bool,
                headers: list[tuple[str, str]]) -> batch.SubResponse:  # fmt: skip
        context = f"{self._root()}/$metadata#{es.name}" + (f"({','.join(select)})" if select else "") + "/$entity"
        return self._json(status, {"@odata.context": context, **Service.render(es, rec, select, ieee754)}, headers)

    def _collection(
        self, es: EntitySet, q: dict[str, str], headers: dict[str, str], ieee754: bool
    ) -> batch.SubResponse:
        for option in q:
            if option.startswith("$") and option not in ("$filter", "$select", "$top", "$skip", "$orderby", "$count",
                                                          "$skiptoken", "$format"):  # fmt: skip
                raise bad_request(f"The query option '{option}' is not supported by this service.")
        try:
            top = _int(q, "$top")
            skip = _int(q, "$skip") or 0
            token = _int(q, "$skiptoken") or 0
            select = odata.parse_select(es, q.get("$select"))
        except odata.ODataError as e:
            raise bad_request(str(e)) from e
        page = self.settings.page_size
        m = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
        if m:
            page = max(1, min(page, int(m.group(1))))
        left = None if top is None else max(0, top - token)
        limit = page if left is None else min(page, left)
        want_count = q.get("$count", "false").lower() == "true"
        records, total, more = self.service.query(
            es, filter_text=q.get("$filter"), orderby=q.get("$orderby"), cross_company=_cross(q),
            offset=skip + token, limit=limit, want_count=want_count,
        )  # fmt: skip
        context = f"{self._root()}/$metadata#{es.name}" + (f"({','.join(select)})" if select else "")
        out: dict[str, Any] = {"@odata.context": context}
        if total is not None:
            out["@odata.count"] = total
        out["value"] = [Service.render(es, r, select, ieee754) for r in records]
        has_more = more and (left is None or left > len(records))
        if has_more:
            nxt = {k: v for k, v in q.items() if k != "$skiptoken"}
            nxt["$skiptoken"] = str(token + len(records))
            out["@odata.nextLink"] = f"{self._root()}/{es.name}?{urlencode(nxt, safe='$,()')}"
        return self._json(200, out)

    def _service_document(self) -> batch.SubResponse:
        return self._json(
            200,
            {
                "@odata.context": f"{self._root()}/$metadata",
                "value": [{"name": n, "kind": "EntitySet", "url": n} for n in ENTITY_SETS],
            },
        )

    def _metadata(self) -> batch.SubResponse:
        types = {"Edm.String", "Edm.Decimal", "Edm.Int32", "Edm.DateTimeOffset", "Edm.Boolean"}
        parts = ['<?xml version="1.0" encoding="utf-8"?>',
                 '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>',
                 f'<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">']  # fmt: skip
        for es in ENTITY_SETS.values():
            parts.append(f'<EntityType Name="{es.entity_type}"><Key>')
            parts += [f'<PropertyRef Name="{k}"/>' for k in es.keys]
            parts.append("</Key>")
            for p in es.props.values():
                typ = p.type if p.type in types else f"{NAMESPACE}.{p.enum}"
                nullable = "false" if p.required or p.name in es.keys else "true"
                parts.append(f'<Property Name="{p.name}" Type="{typ}" Nullable="{nullable}"/>')
            parts.append("</EntityType>")
        parts.append('<EntityContainer Name="Resources">')
        parts += [f'<EntitySet Name="{es.name}" EntityType="{es.qualified_type}"/>' for es in ENTITY_SETS.values()]
        parts.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
        return batch.SubResponse(200, [("Content-Type", "application/xml")], "".join(parts).encode())

    # ---- $batch ------------------------------------------------------------------------------
    def _batch(self, headers: dict[str, str], body: bytes) -> Response:
        try:
            items = batch.parse(body, headers.get("content-type", ""))
        except batch.BatchFormatError as e:
            return self._error(bad_request(str(e)))
        results: list[batch.SubResponse | list[batch.SubResponse]] = []
        for item in items:
            if isinstance(item, batch.ChangeSet):
                results.append(self._changeset(item))
            else:
                try:
                    if item.method in WRITES:
                        with self.store.tx():
                            results.append(self.execute(item))
                    else:
                        results.append(self.execute(item))
                except ODataFailure as failure:
                    results.append(self._failed(failure, item.content_id))
        out, content_type = batch.render(results)
        return Response(out, 200, headers={"OData-Version": "4.0"}, media_type=content_type)

    def _changeset(self, cs: batch.ChangeSet) -> batch.SubResponse | list[batch.SubResponse]:
        """All of the change set, or none of it: one transaction, rolled back on the first failure."""
        responses: list[batch.SubResponse] = []
        content_ids: dict[str, str] = {}
        current: batch.SubRequest | None = None
        try:
            with self.store.tx():
                for current in cs.requests:
                    resp = self.execute(current, content_ids)
                    resp.content_id = current.content_id
                    location = dict(resp.headers).get("Location")
                    if current.content_id and location:
                        content_ids[current.content_id] = "/data/" + location.split("/data/", 1)[1]
                    responses.append(resp)
        except ODataFailure as failure:
            return self._failed(failure, current.content_id if current else None)
        return responses

    def _failed(self, failure: ODataFailure, content_id: str | None) -> batch.SubResponse:
        resp = self._json(failure.status, failure.body())
        resp.content_id = content_id
        return resp

    # ---- admin (no auth, never faulted) -----------------------------------------------------
    async def a_health(self, request: Request) -> Response:
        return _admin({"status": "ok", "simulator": self.name, "instance": self.settings.instance})

    async def a_counts(self, request: Request) -> Response:
        return _admin(self.store.counts())

    async def a_duplicates(self, request: Request) -> Response:
        out: dict[str, Any] = {}
        for rtype, expr, label in BUSINESS_KEYS:
            groups = self.store.duplicate_groups(rtype, expr)
            if groups:
                out[f"{rtype}.{label}"] = groups
        return _admin({"count": sum(len(v) for v in out.values()), "duplicates": out})

    async def a_reset(self, request: Request) -> Response:
        from .seed import seed

        raw = await request.body()
        body = json.loads(raw) if raw else {}
        kind = str(body.get("seed", request.query_params.get("seed", "none")))
        self.store.reset()
        self._tokens.clear()
        self.api_usage = 0
        info = seed(self, kind)
        return _admin({"reset": True, "seed": kind, "seed_info": info})

    async def a_records(self, request: Request) -> Response:
        rtype = request.path_params["rtype"]
        limit = int(request.query_params.get("limit", "1000"))
        offset = int(request.query_params.get("offset", "0"))
        recs = self.store.dump(rtype, limit, offset)
        return _admin({"type": rtype, "count": len(recs), "offset": offset, "records": recs})

    async def a_faults(self, request: Request) -> Response:
        if request.method == "GET":
            return _admin(self.faults.view())
        if request.method == "DELETE":
            self.faults.update({}, replace=True)
            return _admin(self.faults.view())
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            return _admin({"error": "expected a JSON object"}, 400)
        try:
            self.faults.update(body, replace=request.method == "PUT")
        except ValidationError as e:
            return _admin({"error": "invalid fault config", "details": json.loads(e.json())}, 400)
        if body.get("expire_tokens"):
            self.expire_tokens()
        return _admin(self.faults.view())

    async def a_seed_info(self, request: Request) -> Response:
        raw = self.store.get_meta("seed_info")
        return _admin(json.loads(raw) if raw else {"seed": "none"})

    async def a_tokens_expire(self, request: Request) -> Response:
        self.expire_tokens()
        return _admin({"expired": True})


def _admin(obj: Any, status: int = 200) -> Response:
    return Response(_json(obj), status, media_type="application/json")


def _load(body: bytes) -> Any:
    if not body:
        raise bad_request("The request body is empty; a JSON object is expected.")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise bad_request(f"The request body is not valid JSON: {e}.") from e


def _cross(q: dict[str, str]) -> bool:
    return q.get("cross-company", "false").lower() == "true"


def _int(q: dict[str, str], name: str) -> int | None:
    if name not in q:
        return None
    try:
        value = int(q[name])
    except ValueError as e:
        raise odata.ODataError(f"Invalid value '{q[name]}' for {name}.") from e
    if value < 0:
        raise odata.ODataError(f"{name} must not be negative.")
    return value


def create_app(settings: DynamicsSettings | None = None) -> DynamicsSimulator:
    return DynamicsSimulator(settings or DynamicsSettings())
