"""Salesforce-shaped REST server (CRM objects + Certinia PSA objects in one org)."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import re
import secrets
import time
from functools import partial
from typing import Any, cast
from urllib.parse import unquote_plus

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from .._app import BaseSimulator, VendorPipeline
from .._http import HTTPError, Request, Response, json_response, read_form, read_json
from .._jwt import AssertionRefused, verify
from .._query import (
    BoolOp,
    Cmp,
    Count,
    DateLit,
    Field,
    In,
    Not,
    QueryError,
    Select,
    SubSelect,
    compile_where,
    parse,
)
from .._settings import SimSettings
from . import composite, replication, schema
from .schema import LOWER_OBJECTS, OBJECTS, READONLY_ALWAYS, SObject

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RX = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_DATE_RX = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _ApiVersion(Convertor[str]):
    """`v61.0` in the path: Salesforce answers 404 for anything else there."""

    regex = r"\d+\.\d"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sfver", _ApiVersion())
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": aud is the login host
JWT_AUDIENCES = ["https://login.salesforce.com", "https://test.salesforce.com"]
API = "/services/data/v{ver:sfver}"


@functools.lru_cache(maxsize=4096)
def _chunk_char(chunk: str) -> str:
    flags = 0
    for j, ch in enumerate(chunk):
        if "A" <= ch <= "Z":
            flags |= 1 << j
    return _SUFFIX[flags]


def id_suffix(id15: str) -> str:
    return _chunk_char(id15[0:5]) + _chunk_char(id15[5:10]) + _chunk_char(id15[10:15])


def sf_id(prefix: str, n: int) -> str:
    """Deterministic 18-char Salesforce-style id: prefix + pod 'Dd' + base62(n) + checksum."""
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    body = prefix + "Dd" + digits.rjust(10, "0")
    return body + id_suffix(body)


def to18(rid: str) -> str:
    return rid + id_suffix(rid) if len(rid) == 15 else rid


# Account fields whose change sends `account.changed` (what d2r keeps in step, and the website for duplicates)
ACCOUNT_EVENT_FIELDS = ("Name", "ParentId", "D2R_Tax_Id__c", "Website")


def sf_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _norm_datetime(v: str) -> str:
    """Normalise a SOQL datetime literal to the stored format (UTC, .000+0000)."""
    s = v.replace("Z", "+00:00")
    try:
        d = dt.datetime.fromisoformat(s)
    except ValueError:
        return v
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def sf_error(
    status: int, code: str, message: str, fields: list[str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    err: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        err["fields"] = fields
    return json_response([err], status, headers)


def sf_token_error(code: str, description: str) -> Response:
    return json_response({"error": code, "error_description": description}, 400)


def fail(status: int, code: str, message: str, fields: list[str] | None = None) -> HTTPError:
    return HTTPError(sf_error(status, code, message, fields))


class SalesforceSimulator(BaseSimulator):
    name = "salesforce"
    token_paths = ("/services/oauth2/token",)
    business_keys = schema.BUSINESS_KEYS

    def __init__(self, settings: SimSettings) -> None:
        super().__init__(settings, schema.EXTRA_INDEXES)
        self._seeding = False
        self._cursor_inserts = 0
        self.ensure_seeded()

    @property
    def router(self) -> ASGIApp:
        """The routes without the vendor pipeline: where composite subrequests go."""
        return cast(VendorPipeline, self.app).app

    # ---- vendor hooks -------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        r = self.route
        return [  # most used first: Starlette tries them in order
            r(API + "/sobjects/{obj}/describe", self.describe, "GET"),  # before {rid}: "describe" is no id
            r(API + "/sobjects/{obj}/updated", partial(replication.updated, self), "GET"),
            r(API + "/sobjects/{obj}/deleted", partial(replication.deleted, self), "GET"),
            r(API + "/sobjects/{obj}/{rid}", self.get, "GET"),
            r(API + "/query", self.query, "GET"),
            r(API + "/queryAll", self.query_all, "GET"),
            r(API + "/sobjects/{obj}/{fld}/{val}", self.upsert, "PATCH"),
            r(API + "/sobjects/{obj}", self.create, "POST"),
            r(API + "/sobjects/{obj}", self.basic_info, "GET"),
            r(API + "/sobjects/{obj}/{rid}", self.patch, "PATCH"),
            r(API + "/sobjects/{obj}/{rid}", self.delete, "DELETE"),
            r(API + "/sobjects/{obj}/{fld}/{val}", self.get_by_ext, "GET"),
            r(API + "/query/{loc}", self.query_more, "GET"),
            r(API + "/queryAll/{loc}", self.query_more, "GET"),
            r(API + "/composite/sobjects", self.collection_create, "POST"),
            r(API + "/composite/sobjects", self.collection_update, "PATCH"),
            r(API + "/composite", partial(composite.composite, self), "POST"),
            r(API + "/composite/batch", partial(composite.batch, self), "POST"),
            r(API + "/composite/tree/{obj}", partial(composite.tree, self), "POST"),
            r("/services/oauth2/token", self.token, "POST"),
            r("/services/data", self.versions, "GET"),
            r(API, self.resources, "GET"),
            r(API + "/limits", self.limits, "GET"),
            r(API + "/sobjects", self.global_describe, "GET"),
        ]

    def vendor_error(self, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
        hs = {"retry-after": str(retry_after)} if retry_after is not None else None
        return sf_error(status, code, message, headers=hs)

    def throttle_response(self) -> Response:
        return sf_error(
            503,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            headers={"retry-after": str(self.faults.cfg.retry_after_s)},
        )

    def auth_error(self) -> Response:
        return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def authenticate(self, req: Request) -> Response | None:
        path = req.scope["path"]
        if path.startswith("/services/data"):
            if path == "/services/data":
                return None
            err = super().authenticate(req)
            if err is not None:
                return err
            if self.api_usage >= self.settings.daily_limit:
                return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return None

    def vendor_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith("/services/data"):
            return [(b"sforce-limit-info", f"api-usage={self.api_usage}/{self.settings.daily_limit}".encode())]
        return []

    def generate_seed(self, kind: str) -> dict[str, Any]:
        from .seed import seed

        with self.store.tx() as c:
            c.execute("DELETE FROM recycle_bin")  # a reset empties the Recycle Bin too
        return seed(self, kind)

    # ---- auth ---------------------------------------------------------------------
    async def token(self, req: Request) -> Response:
        """Client credentials (client id and secret in the body or as HTTP Basic) and the
        JWT bearer flow (an RS256 assertion signed with the connected app's certificate)."""
        form = await read_form(req)
        grant = form.get("grant_type")
        if grant == JWT_BEARER_GRANT:
            refused = self._jwt_bearer(req, form.get("assertion") or "")
        elif grant == "client_credentials":
            refused = self._client_credentials(req, form)
        else:
            refused = sf_token_error("unsupported_grant_type", "grant type not supported")
        if refused is not None:
            return refused
        tok = "00DDd0000000001!" + secrets.token_urlsafe(40)
        self.issue_token(tok)
        issued = str(int(time.time() * 1000))
        base = self.settings.base_url()
        sig = hashlib.sha256(f"{base}{issued}{tok}".encode()).digest()
        return json_response(
            {
                "access_token": tok,
                "instance_url": base,
                "id": f"{base}/id/00DDd0000000001AAA/005Dd0000000001AAA",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": base64.b64encode(sig).decode(),
                "scope": "api",
            }
        )

    def _client_credentials(self, req: Request, form: dict[str, str]) -> Response | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic[:6].lower() == "basic ":
            try:
                client_id, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return sf_token_error("invalid_client", "invalid client credentials")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if (client_id, secret) != (self.settings.client_id, self.settings.client_secret):
            return sf_token_error("invalid_client", "invalid client credentials")
        return None

    def _jwt_bearer(self, req: Request, assertion: str) -> Response | None:
        base = str(req.base_url).rstrip("/")
        try:
            _header, claims = verify(
                assertion,
                self.registered_key(),
                algorithms=("RS256",),
                audiences=[*JWT_AUDIENCES, base, self.settings.base_url()],
                issuer=self.settings.client_id,
                require=("exp", "iss", "aud", "sub"),
            )
            self.replays.check_and_remember(assertion, float(claims["exp"]))
        except AssertionRefused as e:
            reason = str(e)
            if reason.startswith("InvalidIntegration"):
                return sf_token_error("invalid_client_id", "client identifier invalid")
            if reason.startswith("InvalidAudience"):
                return sf_token_error("invalid_grant", "audience is invalid")
            if reason.startswith("ExpiredAssertion"):
                return sf_token_error("invalid_grant", "expired assertion")
            if reason.startswith("ReplayedAssertion"):
                return sf_token_error("invalid_grant", "JWT has already been used")
            return sf_token_error("invalid_grant", "invalid assertion")
        if claims.get("sub") != self.settings.jwt_username:
            return sf_token_error("invalid_grant", "user hasn't approved this consumer")
        return None

    # ---- discovery ----------------------------------------------------------------
    async def versions(self, req: Request) -> Response:
        return json_response(
            [{"label": f"v{v}", "url": f"/services/data/v{v}.0", "version": f"{v}.0"} for v in range(58, 67)]
        )

    async def resources(self, req: Request, ver: str) -> Response:
        b = f"/services/data/v{ver}"
        return json_response(
            {"sobjects": b + "/sobjects", "query": b + "/query", "limits": b + "/limits", "composite": b + "/composite"}
        )

    async def limits(self, req: Request, ver: str) -> Response:
        mx = self.settings.daily_limit
        return json_response({"DailyApiRequests": {"Max": mx, "Remaining": max(0, mx - self.api_usage)}})

    def _obj(self, name: str) -> SObject:
        canon = LOWER_OBJECTS.get(name.lower())
        if canon is None:
            raise fail(
                404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}' is not supported."
            )
        return OBJECTS[canon]

    async def global_describe(self, req: Request, ver: str) -> Response:
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    {
                        "name": o.name,
                        "keyPrefix": o.prefix,
                        "custom": o.name.endswith("__c"),
                        "urls": {"sobject": f"/services/data/v{ver}/sobjects/{o.name}"},
                    }
                    for o in OBJECTS.values()
                ],
            }
        )

    async def basic_info(self, req: Request, ver: str, obj: str) -> Response:
        """`GET sobjects/<Object>/` (sObject Basic Information): the object and recent items."""
        o = self._obj(obj)
        urls = {
            "sobject": f"/services/data/v{ver}/sobjects/{o.name}",
            "describe": f"/services/data/v{ver}/sobjects/{o.name}/describe",
        }
        return json_response(
            {
                "objectDescribe": {
                    "name": o.name,
                    "keyPrefix": o.prefix,
                    "custom": o.name.endswith("__c"),
                    "urls": urls,
                },
                "recentItems": [],
            }
        )

    async def describe(self, req: Request, ver: str, obj: str) -> Response:
        o = self._obj(obj)
        fields = []
        for f, t in o.fields.items():
            ro = f in READONLY_ALWAYS or f in o.readonly
            d: dict[str, Any] = {
                "name": f,
                "type": t.split(":")[0]
                .replace("ref", "reference")
                .replace("num", "double")
                .replace("str", "string")
                .replace("bool", "boolean")
                .replace("pick", "picklist"),
                "custom": f.endswith("__c"),
                "externalId": f in o.ext_ids,
                "nillable": f not in o.required and not t == "bool",
                "createable": not ro,
                "updateable": not ro,
            }
            if t.startswith("ref:"):
                d["referenceTo"] = [t[4:]]
                d["relationshipName"] = schema.relationship_name(f)
            if t.startswith("pick:"):
                d["picklistValues"] = [{"value": v, "active": True} for v in t[5:].split("|")]
            fields.append(d)
        return json_response(
            {"name": o.name, "keyPrefix": o.prefix, "custom": o.name.endswith("__c"), "fields": fields}
        )

    # ---- records ------------------------------------------------------------------
    def _url(self, ver: str, obj: str, rid: str) -> str:
        return f"/services/data/v{ver}/sobjects/{obj}/{rid}"

    def _render(self, ver: str, o: SObject, data: dict[str, Any], only: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": o.name, "url": self._url(ver, o.name, data["Id"])}}
        names = only if only is not None else list(o.fields)
        for f in names:
            out[f] = data.get(f, False if f == "IsDeleted" else None)
        return out

    async def get(self, req: Request, ver: str, obj: str, rid: str) -> Response:
        o = self._obj(obj)
        data = self.store.get(o.name, to18(rid))
        if data is None:
            raise self._missing(to18(rid))
        only = None
        if req.query_params.get("fields"):
            only = [self._field(o, f.strip()) for f in req.query_params["fields"].split(",") if f.strip()]
            if "Id" not in only:
                only.insert(0, "Id")
        return json_response(self._render(ver, o, data, only))

    def _missing(self, rid: str) -> HTTPError:
        """404 for an id that is not there: ENTITY_IS_DELETED when it is in the Recycle Bin."""
        if replication.in_recycle_bin(self, rid):
            return fail(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return fail(404, "NOT_FOUND", "The requested resource does not exist")

    def _field(self, o: SObject, name: str) -> str:
        canon = o.lower.get(name.lower())
        if canon is None:
            raise fail(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {o.name}", [name])
        return canon

    def _check_ref(self, o: SObject, f: str, v: Any) -> str:
        target = o.ref_target(f) or ""
        if not isinstance(v, str) or not _ID_RX.match(v):
            raise fail(400, "MALFORMED_ID", f"{f}: id value of incorrect type: {v}", [f])
        v = to18(v)
        found = self.store.get_typed(v)
        if found is None and replication.in_recycle_bin(self, v):
            raise fail(400, "ENTITY_IS_DELETED", "entity is deleted", [f])
        if found is None:
            raise fail(400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {v}", [f])
        if found[0] != target:
            raise fail(400, "FIELD_INTEGRITY_EXCEPTION", f"{f}: id value of incorrect type: {v}", [f])
        return v

    def _clean(self, o: SObject, body: Any, creating: bool, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Validate a write body; return canonical field -> value."""
        if not isinstance(body, dict):
            raise fail(400, "JSON_PARSER_ERROR", "Expected a JSON object for the sObject")
        out: dict[str, Any] = {}
        for k, v in body.items():
            if k == "attributes":
                continue
            if k.lower() == "id":
                raise fail(400, "INVALID_FIELD", "The Id field should not be specified in the sobject data.", ["Id"])
            canon = o.lower.get(k.lower())
            if canon is None:
                rel = o.rels.get(k.lower())
                if rel is not None and isinstance(v, dict):
                    out[rel] = self._resolve_rel(o, rel, v)
                    continue
                raise fail(400, "INVALID_FIELD", f"No such column '{k}' on sobject of type {o.name}", [k])
            if canon in skip:
                continue
            if canon in READONLY_ALWAYS or canon in o.readonly:
                raise fail(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {canon}. Please check the security "
                    "settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    [canon],
                )
            t = o.fields[canon]
            if v is None:
                if t == "bool":
                    raise fail(
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of boolean from null value for {canon}",
                        [canon],
                    )
                out[canon] = None
            elif t == "bool":
                if not isinstance(v, bool):
                    raise fail(
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of boolean from VALUE_STRING value {v} for {canon}",
                        [canon],
                    )
                out[canon] = v
            elif t == "num":
                if isinstance(v, bool) or not isinstance(v, int | float):
                    try:
                        v = float(v) if "." in str(v) else int(v)
                    except (TypeError, ValueError):
                        raise fail(
                            400,
                            "JSON_PARSER_ERROR",
                            f"Cannot deserialize instance of double from VALUE_STRING value {v} for {canon}",
                            [canon],
                        ) from None
                out[canon] = v
            elif t == "date":
                if not isinstance(v, str) or not _DATE_RX.match(v):
                    raise fail(
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of date from VALUE_STRING value {v} "
                        "or request may be missing a required field",
                        [canon],
                    )
                try:
                    dt.date.fromisoformat(v)
                except ValueError:
                    raise fail(
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of date from VALUE_STRING value {v}",
                        [canon],
                    ) from None
                out[canon] = v
            elif t.startswith("ref:"):
                out[canon] = self._check_ref(o, canon, v)
            elif t.startswith("pick:"):
                if v not in t[5:].split("|"):
                    raise fail(
                        400,
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"bad value for restricted picklist field: {v}",
                        [canon],
                    )
                out[canon] = v
            else:
                if not isinstance(v, str):
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        v = str(v)
                    else:
                        raise fail(
                            400,
                            "JSON_PARSER_ERROR",
                            f"Cannot deserialize instance of string from {type(v).__name__} value for {canon}",
                            [canon],
                        )
                limit = o.lengths.get(canon)
                if limit is not None and len(v) > limit:
                    raise fail(
                        400,
                        "STRING_TOO_LONG",
                        f"{canon}: data value too large: {v[:40]} (max length={limit})",
                        [canon],
                    )
                out[canon] = v
        return out

    def _resolve_rel(self, o: SObject, ref_field: str, v: dict[str, Any]) -> str:
        target = OBJECTS[o.ref_target(ref_field) or ""]
        keys = [k for k in v if k != "attributes"]
        if len(keys) != 1:
            raise fail(
                400,
                "INVALID_FIELD",
                f"Relationship {schema.relationship_name(ref_field)} needs exactly one external id field",
                [ref_field],
            )
        ext = target.lower.get(keys[0].lower())
        if ext is None or ext not in target.ext_ids:
            raise fail(
                400, "INVALID_FIELD", f"Field {keys[0]} is not an external id field of {target.name}", [ref_field]
            )
        matches = self.store.find_by_field(target.name, ext, v[keys[0]])
        if not matches:
            raise fail(
                400,
                "INVALID_FIELD",
                f"Foreign key external ID: {v[keys[0]]} not found for field {ext} in entity {target.name}",
                [ref_field],
            )
        if len(matches) > 1:
            raise fail(
                400, "INVALID_FIELD", f"Foreign key external ID: {v[keys[0]]} matches more than one record", [ref_field]
            )
        return str(matches[0]["Id"])

    def _derive(self, o: SObject, data: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Computed fields and defaults; side effects on related records."""
        for f, t in o.fields.items():
            if t == "bool" and f not in data:
                data[f] = False
        data.setdefault("CurrencyIsoCode", "USD")
        if o.name == "Opportunity":
            st = data.get("StageName")
            data["IsClosed"] = st in ("Closed Won", "Closed Lost")
            data["IsWon"] = st == "Closed Won"
        elif o.name == "Contact":
            data["Name"] = " ".join(x for x in (data.get("FirstName"), data.get("LastName")) if x)
        elif o.name == "OpportunityLineItem":
            q, up, tp = data.get("Quantity"), data.get("UnitPrice"), data.get("TotalPrice")
            if up is None and tp is not None and q:
                data["UnitPrice"] = up = tp / q
            if up is not None and q is not None:
                data["TotalPrice"] = round(q * up, 2)
            opp = self.store.get("Opportunity", data.get("OpportunityId", ""))
            prod = self.store.get("Product2", data["Product2Id"]) if data.get("Product2Id") else None
            data["Name"] = " ".join(x for x in ((opp or {}).get("Name"), (prod or {}).get("Name")) if x)
            if opp:
                data["CurrencyIsoCode"] = opp.get("CurrencyIsoCode") or "USD"
        elif o.name == "pse__Timecard_Header__c":
            days = [
                data.get(f"pse__{d}_Hours__c")
                for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
            ]
            if any(x is not None for x in days) and data.get("pse__Total_Hours__c") is None:
                data["pse__Total_Hours__c"] = sum(x or 0 for x in days)
            data.setdefault("pse__Status__c", "Saved")
            if data.get("pse__Status__c") == "Approved":
                data["pse__Approved__c"] = True
            if data.get("pse__Status__c") in ("Submitted", "Approved"):
                data["pse__Submitted__c"] = True
            if (
                data.get("pse__Bill_Rate__c") is not None
                and data.get("pse__Total_Hours__c") is not None
                and data.get("pse__Billable__c")
            ):
                data["pse__Total_Billable_Amount__c"] = round(
                    data["pse__Bill_Rate__c"] * data["pse__Total_Hours__c"], 2
                )
        elif o.name == "Task":
            if not data.get("Status"):
                data["Status"] = "Not Started"
            if not data.get("Priority"):
                data["Priority"] = "Normal"
            data["IsClosed"] = data["Status"] == "Completed"
        elif o.name == "pse__Expense__c":
            data.setdefault("pse__Status__c", "Draft")
            if data.get("pse__Status__c") == "Approved":
                data["pse__Approved__c"] = True

    def _events(self, o: SObject, data: dict[str, Any], old: dict[str, Any] | None) -> None:
        if self._seeding:
            return
        prev = old or {}
        rid = data["Id"]
        if o.name == "Opportunity" and data.get("StageName") == "Closed Won" and prev.get("StageName") != "Closed Won":
            self.emit(
                "opportunity.closed_won",
                {
                    "opportunity_id": rid,
                    "account_id": data.get("AccountId"),
                    "legal_entity": data.get("D2R_Legal_Entity__c"),
                    "amount": data.get("Amount"),
                    "currency": data.get("CurrencyIsoCode"),
                    "close_date": data.get("CloseDate"),
                },
                rid,
            )
        elif o.name == "Account" and (changed := sorted(f for f in ACCOUNT_EVENT_FIELDS if data.get(f) != prev.get(f))):
            # account master data changed (or a new account): one event per change
            self.emit(
                "account.changed",
                {"account_id": rid, "modified_at": data["LastModifiedDate"], "fields": changed},
                f"{rid}:{data['LastModifiedDate']}",
            )
        elif o.name == "pse__Timecard_Header__c" and data.get("pse__Approved__c") and not prev.get("pse__Approved__c"):
            self.emit(
                "timecard.approved",
                {
                    "timecard_id": rid,
                    "project_id": data.get("pse__Project__c"),
                    "resource_id": data.get("pse__Resource__c"),
                    "start_date": data.get("pse__Start_Date__c"),
                    "end_date": data.get("pse__End_Date__c"),
                    "hours": data.get("pse__Total_Hours__c"),
                },
                rid,
            )
        elif o.name == "pse__Expense__c" and data.get("pse__Approved__c") and not prev.get("pse__Approved__c"):
            self.emit(
                "expense.approved",
                {
                    "expense_id": rid,
                    "project_id": data.get("pse__Project__c"),
                    "resource_id": data.get("pse__Resource__c"),
                    "amount": data.get("pse__Amount__c"),
                    "currency": data.get("CurrencyIsoCode"),
                    "expense_date": data.get("pse__Expense_Date__c"),
                },
                rid,
            )
        elif o.name == "pse__Milestone__c":
            done = ("Complete", "Completed", "Approved")
            if data.get("pse__Status__c") in done and prev.get("pse__Status__c") not in done:
                self.emit(
                    "milestone.completed",
                    {
                        "milestone_id": rid,
                        "project_id": data.get("pse__Project__c"),
                        "amount": data.get("pse__Milestone_Amount__c"),
                        "name": data.get("Name"),
                        "actual_date": data.get("pse__Actual_Date__c"),
                    },
                    rid,
                )

    def _rollup_amount(self, opp_id: str | None) -> None:
        if not opp_id:
            return
        opp = self.store.get("Opportunity", opp_id)
        if opp is None:
            return
        lines = self.store.find_by_field("OpportunityLineItem", "OpportunityId", opp_id)
        if lines:
            opp["Amount"] = round(sum(x.get("TotalPrice") or 0 for x in lines), 2)
            self.store.update("Opportunity", opp_id, opp)

    def _check_unique(self, o: SObject, rid: str | None, vals: dict[str, Any]) -> None:
        """A unique field (d2r's external ids are) refuses a value another record has."""
        for f in o.unique:
            v = vals.get(f)
            if v is None or v == "":
                continue
            other = next((r["Id"] for r in self.store.find_by_field(o.name, f, v) if r["Id"] != rid), None)
            if other is not None:
                raise fail(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {f} duplicates value on record with id: {other}",
                    [f],
                )

    def _insert(self, o: SObject, vals: dict[str, Any]) -> str:
        missing = [f for f in o.required if vals.get(f) in (None, "")]
        if missing:
            raise fail(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(o, None, vals)
        n = self.store.next_counter(o.prefix)
        rid = sf_id(o.prefix, n)
        now = sf_now()
        data = {"Id": rid, **vals, "CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now}
        if o.autonumber:
            data["Name"] = f"{o.autonumber}{n:06d}"
        self._derive(o, data, None)
        self.store.insert(o.name, rid, data)
        if o.name == "OpportunityLineItem":
            self._rollup_amount(data.get("OpportunityId"))
        self._events(o, data, None)
        return rid

    def _update(self, o: SObject, old: dict[str, Any], vals: dict[str, Any]) -> None:
        data = {**old, **vals}
        missing = [f for f in o.required if data.get(f) in (None, "")]
        if missing:
            raise fail(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(o, old["Id"], {f: v for f, v in vals.items() if v != old.get(f)})
        now = sf_now()
        data["LastModifiedDate"] = now
        data["SystemModstamp"] = now
        if (
            o.name == "pse__Timecard_Header__c"
            and "pse__Total_Hours__c" not in vals
            and any(k.endswith("day_Hours__c") for k in vals)
        ):
            data["pse__Total_Hours__c"] = None
        self._derive(o, data, old)
        self.store.update(o.name, data["Id"], data)
        if o.name == "OpportunityLineItem":
            self._rollup_amount(data.get("OpportunityId"))
            if old.get("OpportunityId") != data.get("OpportunityId"):
                self._rollup_amount(old.get("OpportunityId"))
        self._events(o, data, old)

    async def create(self, req: Request, ver: str, obj: str) -> Response:
        o = self._obj(obj)
        vals = self._clean(o, await read_json(req), creating=True)
        with self.store.tx():
            rid = self._insert(o, vals)
        return json_response({"id": rid, "success": True, "errors": []}, 201, {"location": self._url(ver, o.name, rid)})

    async def patch(self, req: Request, ver: str, obj: str, rid: str) -> Response:
        o = self._obj(obj)
        vals = self._clean(o, await read_json(req), creating=False)
        with self.store.tx():
            old = self.store.get(o.name, to18(rid))
            if old is None:
                raise self._missing(to18(rid))
            self._update(o, old, vals)
        return Response(status_code=204)

    async def delete(self, req: Request, ver: str, obj: str, rid: str) -> Response:
        o = self._obj(obj)
        with self.store.tx():
            old = self.store.get(o.name, to18(rid))
            if old is None:
                raise self._missing(to18(rid))
            replication.recycle(self, o.name, old)
            if o.name == "OpportunityLineItem":
                self._rollup_amount(old.get("OpportunityId"))
            self._cascade(o.name, old["Id"])
        return Response(status_code=204)

    def _cascade(self, obj: str, rid: str) -> None:
        """Master-detail children go with their parent, as in Salesforce."""
        for child, ref in schema.MASTER_DETAIL.get(obj, ()):
            for rec in self.store.find_by_field(child, ref, rid):
                replication.recycle(self, child, rec)
                self._cascade(child, rec["Id"])

    def _ext_field(self, o: SObject, fld: str) -> str:
        canon = o.lower.get(fld.lower())
        if canon is None or (canon not in o.ext_ids and canon != "Id"):
            raise fail(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {fld}")
        return canon

    async def get_by_ext(self, req: Request, ver: str, obj: str, fld: str, val: str) -> Response:
        o = self._obj(obj)
        f = self._ext_field(o, fld)
        matches = self.store.find_by_field(o.name, f, val)
        if not matches:
            raise fail(404, "NOT_FOUND", "The requested resource does not exist")
        if len(matches) > 1:
            return json_response([self._url(ver, o.name, m["Id"]) for m in matches], 300)
        return json_response(self._render(ver, o, matches[0]))

    async def upsert(self, req: Request, ver: str, obj: str, fld: str, val: str) -> Response:
        o = self._obj(obj)
        f = self._ext_field(o, fld)
        body = await read_json(req)
        if isinstance(body, dict):
            for k in list(body):
                if k.lower() == f.lower():
                    if body[k] != val:
                        raise fail(400, "INVALID_FIELD", f"{f} in the body does not match the URL", [f])
                    body.pop(k)
        vals = self._clean(o, body, creating=True)
        with self.store.tx():
            matches = (
                self.store.find_by_field(o.name, f, val)
                if f != "Id"
                else ([d] if (d := self.store.get(o.name, to18(val))) else [])
            )
            if len(matches) > 1:
                return json_response([self._url(ver, o.name, m["Id"]) for m in matches], 300)
            if matches:
                self._update(o, matches[0], vals)
                return Response(status_code=204)
            if f == "Id" or req.query_params.get("updateOnly") == "true":
                raise fail(404, "NOT_FOUND", "The requested resource does not exist")
            rid = self._insert(o, {**vals, f: val})
        return json_response(
            {"id": rid, "success": True, "errors": [], "created": True},
            201,
            {"location": self._url(ver, o.name, rid)},
        )

    async def collection_create(self, req: Request, ver: str) -> Response:
        return await self._collection(req, updating=False)

    async def collection_update(self, req: Request, ver: str) -> Response:
        """sObject Collections update: `PATCH /composite/sobjects`, records carry their `id`."""
        return await self._collection(req, updating=True)

    def _collection_one(self, rec: Any, updating: bool) -> str:
        if not isinstance(rec, dict):
            raise fail(400, "JSON_PARSER_ERROR", "Expected a JSON object for the sObject")
        typ = (rec.get("attributes") or {}).get("type", "")
        o = self._obj(typ)
        if not updating:
            return self._insert(o, self._clean(o, rec, creating=True))
        rec = dict(rec)
        rid = next((rec.pop(k) for k in list(rec) if k.lower() == "id"), None)
        if not isinstance(rid, str) or not _ID_RX.match(rid):
            raise fail(400, "MALFORMED_ID", f"invalid record id: {rid}", ["Id"])
        vals = self._clean(o, rec, creating=False)
        old = self.store.get(o.name, to18(rid))
        if old is None:
            raise fail(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        self._update(o, old, vals)
        return str(old["Id"])

    async def _collection(self, req: Request, updating: bool) -> Response:
        body = await read_json(req) or {}
        recs = body.get("records") or []
        all_or_none = bool(body.get("allOrNone"))
        if len(recs) > 200:
            raise fail(
                400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
            )
        results: list[dict[str, Any]] = []
        with self.store.tx() as c:
            c.execute("SAVEPOINT coll")
            failed = False
            for rec in recs:
                c.execute("SAVEPOINT one")
                try:
                    rid = self._collection_one(rec, updating)
                    c.execute("RELEASE one")
                    results.append({"id": rid, "success": True, "errors": []})
                except HTTPError as e:
                    c.execute("ROLLBACK TO one")
                    c.execute("RELEASE one")
                    failed = True
                    results.append(
                        {
                            "success": False,
                            "errors": [
                                {**err, "statusCode": err.get("errorCode")}
                                for err in json.loads(bytes(e.response.body))
                            ],
                        }
                    )
            if failed and all_or_none:
                c.execute("ROLLBACK TO coll")
                results = [
                    r
                    if not r["success"]
                    else {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                "message": "Record rolled back because not all records were valid and "
                                "the request was using AllOrNone header",
                                "fields": [],
                            }
                        ],
                    }
                    for r in results
                ]
            c.execute("RELEASE coll")
        return json_response(results)

    # ---- SOQL ---------------------------------------------------------------------
    def _col(self, o: SObject, path: list[str], alias: str, depth: int = 0) -> str:
        if len(path) == 1:
            f = self._field(o, path[0])
            if f == "IsDeleted":  # live records need not store it
                return f"COALESCE(json_extract({alias}.data,'$.IsDeleted'), 0)"
            return f"{alias}.id" if f == "Id" else f"json_extract({alias}.data,'$.{f}')"
        rel = o.rels.get(path[0].lower())
        if rel is None:
            raise fail(
                400,
                "INVALID_FIELD",
                f"Didn't understand relationship '{path[0]}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name.",
            )
        target = OBJECTS[o.ref_target(rel) or ""]
        p = f"p{depth + 1}"
        inner = self._col(target, path[1:], p, depth + 1)
        return f"(SELECT {inner} FROM records {p} WHERE {p}.id = json_extract({alias}.data,'$.{rel}'))"

    def _compile(self, o: SObject, sel: Select) -> tuple[str, list[Any]]:
        params: list[Any] = []

        def norm(node: Any) -> Any:
            if isinstance(node, Cmp) and isinstance(node.value, DateLit) and "T" in node.value:
                node.value = _norm_datetime(node.value)
            elif isinstance(node, In):
                node.values = [_norm_datetime(v) if isinstance(v, DateLit) and "T" in v else v for v in node.values]
            elif isinstance(node, BoolOp):
                for i in node.items:
                    norm(i)
            elif isinstance(node, Not):
                norm(node.item)
            return node

        where = "r.type = ?"
        params.append(o.name)
        if sel.where is not None:
            norm(sel.where)
            where += " AND " + compile_where(sel.where, lambda p: self._col(o, p, "r"), params)
        return where, params

    def _run_query(
        self,
        ver: str,
        q: str,
        start: int,
        batch: int,
        locator: str | None,
        total: int | None = None,
        include_deleted: bool = False,
    ) -> Response:
        try:
            sel = parse(q)
        except QueryError as e:
            raise fail(400, "MALFORMED_QUERY", str(e)) from None
        canon = LOWER_OBJECTS.get(sel.table.lower())
        if canon is None:
            raise fail(
                400,
                "INVALID_TYPE",
                f"sObject type '{sel.table}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name.",
            )
        o = OBJECTS[canon]
        where, params = self._compile(o, sel)
        for it in sel.items:
            if isinstance(it, Field):
                self._col(o, it.path, "r")  # validates
            elif isinstance(it, SubSelect):
                self._child(o, it.select)
            elif not isinstance(it, Count):
                raise fail(400, "MALFORMED_QUERY", "unsupported SELECT item")
        c = self.store.conn
        off = sel.offset or 0
        cap = sel.limit if sel.limit is not None else None
        src = replication.WITH_DELETED if include_deleted else "records"

        def count() -> int:
            n = int(c.execute(f"SELECT COUNT(*) FROM {src} r WHERE {where}", params).fetchone()[0])
            t = max(0, n - off)
            return min(t, cap) if cap is not None else t

        if sel.is_count:
            return json_response({"totalSize": count(), "done": True, "records": []})
        order = ", ".join(
            self._col(o, ob.path, "r")
            + (" DESC" if ob.desc else " ASC")
            + ("" if ob.nulls_last is None else (" NULLS LAST" if ob.nulls_last else " NULLS FIRST"))
            for ob in sel.order
        )
        order = (order + ", r.seq") if order else "r.seq"
        # fetch one row more than the batch: when the first page is not full, its size is
        # the total and no COUNT(*) is needed; later pages reuse the total kept with the cursor
        want = batch + 1
        if cap is not None:
            want = max(0, min(want, cap - start))
        rows = (
            c.execute(
                f"SELECT r.data FROM {src} r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, want, off + start],
            ).fetchall()
            if want
            else []
        )
        if total is None:
            total = start + len(rows) if len(rows) <= batch else count()
        rows = rows[:batch]
        take = len(rows)
        datas = [json.loads(r[0]) for r in rows]
        records = self._shape(ver, o, sel, datas)
        out: dict[str, Any] = {"totalSize": total, "done": start + take >= total, "records": records}
        if not out["done"]:
            if locator is None:
                locator = "01g" + secrets.token_hex(6).upper()
                now = time.time()
                with self.store.tx():
                    c.execute(
                        "INSERT INTO cursors(id,q,created) VALUES(?,?,?)",
                        (locator, json.dumps({"q": q, "batch": batch, "total": total, "all": include_deleted}), now),
                    )
                    self._cursor_inserts += 1
                    if self._cursor_inserts % 200 == 0:  # query locators expire after 15 min
                        c.execute("DELETE FROM cursors WHERE created < ?", (now - 900,))
            out["nextRecordsUrl"] = f"/services/data/v{ver}/query/{locator}-{start + take}"
        return json_response(out)

    def _shape(self, ver: str, o: SObject, sel: Select, datas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fields = [it.path for it in sel.items if isinstance(it, Field)]
        # prefetch parents level by level
        cache: dict[str, tuple[str, dict[str, Any]]] = {}

        def parents(obj: SObject, recs: list[dict[str, Any]], paths: list[list[str]]) -> None:
            by_rel: dict[str, list[list[str]]] = {}
            for p in paths:
                if len(p) > 1:
                    by_rel.setdefault(obj.rels[p[0].lower()], []).append(p[1:])
            for rel, sub in by_rel.items():
                ids = [str(r[rel]) for r in recs if r.get(rel)]
                need = [i for i in ids if i not in cache]
                if need:
                    cache.update(self.store.get_many(need))
                target = OBJECTS[obj.ref_target(rel) or ""]
                parents(target, [cache[i][1] for i in ids if i in cache], sub)

        parents(o, datas, fields)

        def build(obj: SObject, rec: dict[str, Any], paths: list[list[str]]) -> dict[str, Any]:
            out: dict[str, Any] = {"attributes": {"type": obj.name, "url": self._url(ver, obj.name, rec["Id"])}}
            groups: dict[str, list[list[str]]] = {}
            order: list[tuple[str, str]] = []
            for p in paths:
                if len(p) == 1:
                    f = obj.lower[p[0].lower()]
                    if f not in out:
                        out[f] = rec.get(f, False if f == "IsDeleted" else None)
                        order.append(("f", f))
                else:
                    rel = obj.rels[p[0].lower()]
                    if rel not in groups:
                        groups[rel] = []
                        order.append(("r", rel))
                    groups[rel].append(p[1:])
            for kind, name in order:
                if kind == "r":
                    pid = rec.get(name)
                    rn = schema.relationship_name(name)
                    if pid and pid in cache:
                        out[rn] = build(OBJECTS[cache[pid][0]], cache[pid][1], groups[name])
                    else:
                        out[rn] = None
            return out

        out = [build(o, d, fields) for d in datas]
        for it in sel.items:
            if isinstance(it, SubSelect) and out:
                name, rows = self._children(ver, o, it.select, [d["Id"] for d in datas])
                for rec in out:
                    kids = rows.get(rec["Id"])
                    rec[name] = {"totalSize": len(kids), "done": True, "records": kids} if kids else None
        return out

    def _child(self, o: SObject, sub: Select) -> tuple[str, SObject, str]:
        rel = schema.CHILD_RELS.get((o.name, sub.table.lower()))
        if rel is None:
            raise fail(
                400,
                "INVALID_TYPE",
                f"Didn't understand relationship '{sub.table}' in FROM part of query call. If you are "
                "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name.",
            )
        name, child, ref = rel
        co = OBJECTS[child]
        for it in sub.items:
            if isinstance(it, Field):
                self._col(co, it.path, "r")
            else:
                raise fail(400, "MALFORMED_QUERY", "only fields are allowed in a relationship subquery")
        return name, co, ref

    def _children(
        self, ver: str, o: SObject, sub: Select, parent_ids: list[str]
    ) -> tuple[str, dict[str, list[dict[str, Any]]]]:
        name, co, ref = self._child(o, sub)
        where, params = self._compile(co, sub)
        marks = ",".join("?" * len(parent_ids))
        where += f" AND json_extract(r.data,'$.{ref}') IN ({marks})"
        params.extend(parent_ids)
        order = ", ".join(self._col(co, ob.path, "r") + (" DESC" if ob.desc else " ASC") for ob in sub.order)
        order = (order + ", r.seq") if order else "r.seq"
        rows = self.store.conn.execute(
            f"SELECT r.data FROM records r WHERE {where} ORDER BY {order}", params
        ).fetchall()
        datas = [json.loads(r[0]) for r in rows]
        shaped = self._shape(ver, co, sub, datas)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for d, rec in zip(datas, shaped, strict=True):
            bucket = grouped.setdefault(d[ref], [])
            if sub.limit is None or len(bucket) < sub.limit:
                bucket.append(rec)
        return name, grouped

    def _batch(self, req: Request) -> int:
        b = self.settings.page_size
        opt = req.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize=(\d+)", opt)
        if m:
            b = max(1, min(2000, int(m.group(1))))
        return b

    async def query(self, req: Request, ver: str) -> Response:
        q = req.query_params.get("q")
        if not q:
            raise fail(400, "MALFORMED_QUERY", "A query string has to be specified")
        return self._run_query(ver, q, 0, self._batch(req), None)

    async def query_all(self, req: Request, ver: str) -> Response:
        """`queryAll`: the same SOQL, over live records and the Recycle Bin (IsDeleted)."""
        q = req.query_params.get("q")
        if not q:
            raise fail(400, "MALFORMED_QUERY", "A query string has to be specified")
        return self._run_query(ver, q, 0, self._batch(req), None, include_deleted=True)

    async def query_more(self, req: Request, ver: str, loc: str) -> Response:
        m = re.match(r"^(01g[0-9A-Za-z]+)-(\d+)$", loc)
        row = self.store.conn.execute("SELECT q FROM cursors WHERE id=?", (m.group(1),)).fetchone() if m else None
        if m is None or row is None:
            raise fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cur = json.loads(row[0])
        return self._run_query(
            ver, cur["q"], int(m.group(2)), int(cur["batch"]), m.group(1), cur.get("total"), bool(cur.get("all"))
        )


def create_app(settings: SimSettings | None = None) -> SalesforceSimulator:
    return SalesforceSimulator(settings or SimSettings())
