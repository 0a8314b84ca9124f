"""NetSuite-shaped REST server (SuiteTalk REST record service + SuiteQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from typing import Any

from starlette.routing import BaseRoute

from .._app import BaseSimulator, Handler
from .._http import HTTPError, Request, Response, json_response, read_form, read_json
from .._jwt import AssertionRefused, verify
from .._settings import SimSettings
from . import catalog, schema, sdf, stored, suiteql
from ._filter import FilterError, compile_filter
from .schema import (
    COMMON,
    CUSTOM_PREFIXES,
    ID_SPACE,
    LOWER_TYPES,
    POSTING_LOCKS,
    RECORDS,
    SUBLISTS,
    TRANSACTIONS,
)
from .tba import TokenBasedAuth

REC = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# "The Request Token Structure" (NetSuite help): the algorithms a client assertion may use
ASSERTION_ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ASYNC = "/services/rest/async/v1"
ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"
_DATE_RX = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip
_TRAN_PREFIX = {"salesOrder": "SO", "invoice": "INV", "creditMemo": "CM",
                "customerPayment": "PYMT", "journalEntry": "JE"}  # fmt: skip
_STATUS = {
    "salesOrder": {"A": "Pending Approval", "B": "Pending Fulfillment", "F": "Pending Billing",
                   "G": "Billed", "H": "Closed"},
    "invoice": {"A": "Open", "B": "Paid In Full"},
    "creditMemo": {"A": "Open", "B": "Fully Applied"},
    "customerPayment": {"A": "Not Deposited", "B": "Deposited", "C": "Unapproved Payment"},
    "journalEntry": {"A": "Pending Approval", "B": "Approved for Posting"},
}  # fmt: skip
_DEFAULT_STATUS = {"salesOrder": "F", "invoice": "A", "creditMemo": "A", "customerPayment": "A",
                   "journalEntry": "B"}  # fmt: skip
SUBSIDIARY_LOCKS = "custrecord_d2r_locked_subsidiaries"  # comma-separated subsidiary ids
_FIELD_ALIASES = {"allocked": "allLocked"}


def ns_error(
    status: int, code: str, detail: str, path: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    d: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        d["o:errorPath"] = path
    body = {
        "type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4." + str(status - 399)
        if 400 <= status < 500
        else "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [d],
    }
    return json_response(body, status, headers, media_type=ERROR_TYPE)


def _query_error(detail: str) -> Response:
    """SuiteQL's refusal: 400 INVALID_PARAMETER naming the `q` query parameter."""
    body = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [{"detail": detail, "o:errorQueryParam": "q", "o:errorCode": "INVALID_PARAMETER"}],
    }
    return json_response(body, 400, media_type=ERROR_TYPE)


def _token_error(code: str, reason: str) -> Response:
    """RFC 6749 error body; `error_description` carries what NetSuite's Login Audit Trail
    would show (InvalidSignature, ...), which the real endpoint does not return."""
    return json_response({"error": code, "error_description": reason}, 400)


def fail(status: int, code: str, detail: str, path: str | None = None) -> HTTPError:
    return HTTPError(ns_error(status, code, detail, path))


def ns_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(v: Any, path: str) -> float | int:
    if isinstance(v, bool):
        raise fail(400, "INVALID_CONTENT", f"Invalid value for {path}: expected a number", path)
    if isinstance(v, int | float):
        return v
    try:
        f = float(str(v))
    except ValueError:
        raise fail(400, "INVALID_CONTENT", f"Invalid value for {path}: {v!r} is not a number", path) from None
    return int(f) if f.is_integer() and "." not in str(v) else f


def _line_key(sublist: str, line: dict[str, Any]) -> str | None:
    """What identifies a line of a keyed sublist: its `line` number (item, line), or the
    applied document (apply)."""
    if sublist == "apply":
        doc = line.get("doc")
        return str(doc.get("id")) if isinstance(doc, dict) and doc.get("id") else None
    return str(line["line"]) if line.get("line") is not None else None


def _merge_lines(
    sublist: str, old: list[dict[str, Any]], new: list[dict[str, Any]], replace: bool
) -> list[dict[str, Any]]:
    existing = {k: line for line in old if (k := _line_key(sublist, line)) is not None}
    out = [] if replace else [dict(line) for line in old]
    position = {k: i for i, line in enumerate(out) if (k := _line_key(sublist, line)) is not None}
    for line in new:
        key = _line_key(sublist, line)
        if key is not None and key in existing:
            merged = {**existing[key], **line}
            if key in position:
                out[position[key]] = merged
            else:
                out.append(merged)
        else:
            out.append({k: v for k, v in line.items() if k != "line"} if key is not None else line)
    return out


def _number_lines(lines: list[dict[str, Any]]) -> None:
    """Line numbers are ids: kept across updates, new lines numbered after the last one."""
    taken: set[int] = set()
    for line in lines:
        n = line.get("line")
        if isinstance(n, int) and n not in taken:
            taken.add(n)
        else:
            line.pop("line", None)
    nxt = max(taken, default=0)
    for line in lines:
        if "line" not in line:
            nxt += 1
            line["line"] = nxt
            taken.add(nxt)


def _money(x: float) -> float:
    return round(x + 0.0, 2)


class NetSuiteSimulator(BaseSimulator):
    name = "netsuite"
    token_paths = (TOKEN_PATH,)
    business_keys = schema.BUSINESS_KEYS

    def __init__(self, settings: SimSettings) -> None:
        super().__init__(settings, schema.EXTRA_INDEXES)
        self._seeding = False
        self.tables = catalog.build()
        with self.store.tx() as conn:  # SuiteQL's transaction tables, derived by triggers
            stored.install(conn, self.tables)
        self.custom = sdf.load()  # the account's custom fields, from d2r's SDF project
        st = settings
        self.tba = TokenBasedAuth(st.netsuite_account_id, st.netsuite_consumer_key, st.netsuite_consumer_secret,
                                  st.netsuite_token_id, st.netsuite_token_secret)  # fmt: skip
        self.login_audit: list[str] = []  # why logins were refused (Setup > View Login Audit Trail)
        self.custom_fields: dict[str, str] | None = self.custom.columns()
        self.ensure_seeded()

    # ---- hooks --------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        r = self.route
        return [  # most used first: Starlette tries them in order
            r(REC + "/{rtype}/{key}", self.get, "GET"),
            r("/services/rest/query/v1/suiteql", self.suiteql, "POST"),
            r(REC + "/{rtype}/{key}", self.put, "PUT"),
            r(REC + "/{rtype}", self.create, "POST"),
            r(REC + "/{rtype}/{key}", self.patch, "PATCH"),
            r(REC + "/{rtype}", self.collection, "GET"),
            r(REC + "/{rtype}/{key}", self.delete, "DELETE"),
            r(REC + "/{rtype}/{key}/!transform/{target}", self.transform, "POST"),
            r("/services/rest/auth/oauth2/v1/token", self.token, "POST"),
            r(ASYNC + "/job/{jid}", self.job, "GET"),
            r(ASYNC + "/job/{jid}/task/{tid}", self.job_task, "GET"),
            r(ASYNC + "/job/{jid}/task/{tid}/result", self.job_result, "GET"),
        ]

    def vendor_error(self, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
        if code == "NOT_FOUND":
            code = "NONEXISTENT_ID"
        hs = {"retry-after": str(retry_after)} if retry_after is not None else None
        return ns_error(status, code, message, headers=hs)

    def throttle_response(self) -> Response:
        return ns_error(
            429,
            "CONCURRENCY_LIMIT_EXCEEDED",
            "Request blocked by the request controller due to the concurrency limit.",
            headers={"retry-after": str(self.faults.cfg.retry_after_s)},
        )

    def auth_error(self) -> Response:
        return ns_error(
            401,
            "INVALID_LOGIN",
            "Invalid login attempt. For more details, see the Login Audit Trail in "
            "the NetSuite UI at Setup > Users/Roles > User Management > View Login "
            "Audit Trail.",
        )

    def authenticate(self, req: Request) -> Response | None:
        """An OAuth 2.0 bearer token, or a request signed with token-based auth (OAuth 1.0a)."""
        authorization = req.headers.get("authorization", "")
        if authorization[:6].lower() != "oauth ":
            return super().authenticate(req)
        reason = self.tba.refusal(str(req.url), req.method, authorization)
        if reason is None:
            return None
        self.login_audit = [*self.login_audit[-99:], reason]
        return self.auth_error()

    def generate_seed(self, kind: str) -> dict[str, Any]:
        from .seed import seed

        return seed(self, kind)

    # ---- auth ---------------------------------------------------------------------
    async def token(self, req: Request) -> Response:
        """OAuth 2.0 client credentials (M2M): the client authenticates with a JWT signed by
        the certificate mapped to the integration; NetSuite has no client-secret variant."""
        form = await read_form(req)
        if form.get("grant_type") != "client_credentials":
            return _token_error("unsupported_grant_type", f"grant_type {form.get('grant_type')!r} is not supported")
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not assertion:
            return _token_error(
                "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE} with a client_assertion"
            )
        token_url = str(req.url.replace(query=""))
        audiences = [token_url, f"{self.settings.base_url()}{TOKEN_PATH}"]
        try:
            _header, claims = verify(
                assertion,
                self.registered_key(),
                algorithms=ASSERTION_ALGORITHMS,
                audiences=audiences,
                issuer=self.settings.client_id,
                kid=self.settings.jwt_key_id,
            )
            if float(claims["exp"]) - float(claims["iat"]) > 3600:
                raise AssertionRefused("InvalidAssertion: exp must be less than 60 minutes after iat")
            scopes = claims.get("scope") or ""
            scopes = scopes if isinstance(scopes, list) else str(scopes).split(",")
            if "rest_webservices" not in {str(x).strip() for x in scopes}:
                raise AssertionRefused("InvalidScope: scope must include rest_webservices")
            self.replays.check_and_remember(assertion, float(claims["exp"]))
        except AssertionRefused as e:
            return _token_error("invalid_client" if "Signature" in str(e) else "invalid_request", str(e))
        tok = "eyJraWQiOiJzaW0ifQ." + secrets.token_urlsafe(40) + ".sim"
        ttl = self.issue_token(tok)
        return json_response({"access_token": tok, "token_type": "bearer", "expires_in": str(int(ttl))})

    # ---- helpers ------------------------------------------------------------------
    def _type(self, rtype: str) -> str:
        t = LOWER_TYPES.get(rtype.lower())
        if t is None:
            raise fail(404, "INVALID_RCRD_TYPE", f"Record type '{rtype}' does not exist.")
        return t

    def _href(self, rtype: str, rid: str) -> str:
        return f"{self.settings.base_url()}{REC}/{rtype}/{rid}"

    def _find(self, rtype: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            m = self.store.find_by_ext(rtype, key[4:])
            return m[0] if m else None
        return self.store.get(rtype, key)

    def _must(self, rtype: str, key: str) -> dict[str, Any]:
        rec = self._find(rtype, key)
        if rec is None:
            raise fail(404, "NONEXISTENT_ID", "The record instance does not exist. Provide a valid record instance ID.")
        return rec

    def _resolve_ref(self, targets: str, v: Any, path: str) -> dict[str, Any]:
        types = targets.split("|")
        if isinstance(v, str | int) and not isinstance(v, bool):
            v = {"id": str(v)}
        if not isinstance(v, dict):
            raise fail(400, "INVALID_CONTENT", f"Invalid value for the reference field {path}.", path)
        rec: dict[str, Any] | None = None
        rtype = types[0]
        for t in types:
            if v.get("id") is not None:
                rec = self.store.get(t, str(v["id"]))
            elif v.get("externalId") is not None:
                m = self.store.find_by_ext(t, str(v["externalId"]))
                rec = m[0] if m else None
            elif v.get("refName") is not None:
                rec = self._by_name(t, str(v["refName"]))
            else:
                raise fail(
                    400, "INVALID_CONTENT", f"The reference field {path} needs an id, externalId or refName.", path
                )
            if rec is not None:
                rtype = t
                break
        if rec is None:
            shown = v.get("id") or v.get("externalId") or v.get("refName")
            raise fail(400, "USER_ERROR", f"Invalid Field Value {shown} for the following field: {path}", path)
        return {"id": rec["id"], "refName": self._ref_name(rtype, rec)}

    def _by_name(self, rtype: str, name: str) -> dict[str, Any] | None:
        for f in ("name", "symbol", "companyName", "entityId", "periodName", "itemId"):
            m = self.store.find_by_field(rtype, f, name)
            if m:
                return m[0]
        return None

    @staticmethod
    def _ref_name(rtype: str, rec: dict[str, Any]) -> str:
        for f in ("name", "companyName", "entityId", "periodName", "itemId", "acctName", "tranId"):
            if rec.get(f):
                return str(rec[f])
        return str(rec.get("id"))

    def _clean_value(self, kind: str, v: Any, path: str) -> Any:
        if v is None:
            return None
        if kind.startswith("ref:"):
            return self._resolve_ref(kind[4:], v, path)
        if kind == "num":
            return _num(v, path)
        if kind == "bool":
            if not isinstance(v, bool):
                raise fail(400, "INVALID_CONTENT", f"Invalid value for {path}: expected a boolean", path)
            return v
        if kind == "date":
            if not isinstance(v, str) or not _DATE_RX.match(v[:10]):
                raise fail(400, "INVALID_CONTENT", f"Invalid date value for {path}: {v!r}", path)
            try:
                dt.date.fromisoformat(v[:10])
            except ValueError:
                raise fail(400, "INVALID_CONTENT", f"Invalid date value for {path}: {v!r}", path) from None
            return v[:10]
        if kind == "str":
            if isinstance(v, dict | list):
                raise fail(400, "INVALID_CONTENT", f"Invalid value for {path}: expected a string", path)
            return v if isinstance(v, str) else json.dumps(v)
        return v

    def _field_kind(self, rtype: str, key: str) -> tuple[str, str] | None:
        fields = RECORDS[rtype]
        if key in fields:
            return key, fields[key]
        if key in COMMON:
            return key, COMMON[key]
        low = key.lower()
        low = _FIELD_ALIASES.get(low, low).lower()
        for f, k in (*fields.items(), *COMMON.items()):
            if f.lower() == low:
                return f, k
        return None

    def _clean(self, rtype: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise fail(400, "INVALID_CONTENT", "The request body must be a JSON object.")
        out: dict[str, Any] = {}
        for k, v in body.items():
            if k == "links":
                continue
            if k.lower().startswith(CUSTOM_PREFIXES):
                out[k] = self._custom_value(rtype, "body", k, v, k)
                continue
            fk = self._field_kind(rtype, k)
            if fk is None:
                raise fail(400, "INVALID_CONTENT", f"Invalid field name '{k}' for record type '{rtype}'.", k)
            f, kind = fk
            if kind.startswith("ro:"):
                raise fail(400, "INVALID_CONTENT", f"The field {f} is read-only and cannot be set.", f)
            if kind.startswith("sublist:"):
                out[f] = self._clean_sublist(rtype, kind[8:], v, f)
            elif kind == "status":
                # NetSuite computes a transaction's status; a sales order closes by closing
                # its lines (`isClosed`), and bills through transforms.
                raise fail(400, "INVALID_CONTENT", f"The field {f} is read-only and cannot be set.", f)
            else:
                out[f] = self._clean_value(kind, v, f)
        return out

    def _custom_value(self, rtype: str, where: str, name: str, v: Any, path: str) -> Any:
        """A custom field exists where the SDF project defines it (vendor/netsuite/src/Objects)."""
        kind = self.custom.kind(rtype, where, name)
        if kind is None:
            on = f"record type '{rtype}'" if where == "body" else f"sublist '{where}' of '{rtype}'"
            raise fail(
                400,
                "INVALID_CONTENT",
                f"Invalid field name '{name}' for {on}: no such custom field in this account "
                "(not defined in vendor/netsuite/src/Objects).",
                path,
            )
        return self._clean_value(kind, v, path)

    def _clean_sublist(self, rtype: str, name: str, v: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(v, dict) or not isinstance(v.get("items"), list):
            raise fail(400, "INVALID_CONTENT", f"The sublist {path} must be an object with items.", path)
        spec = SUBLISTS[name]
        lines = []
        for i, line in enumerate(v["items"]):
            if not isinstance(line, dict):
                raise fail(400, "INVALID_CONTENT", f"Invalid sublist line {path}[{i}]", path)
            out: dict[str, Any] = {}
            for k, val in line.items():
                if k == "links":
                    continue
                if k.lower().startswith(CUSTOM_PREFIXES):
                    out[k] = self._custom_value(rtype, path, k, val, f"{path}.items[{i}].{k}")
                    continue
                kind = spec.get(k)
                if kind is None:
                    raise fail(400, "INVALID_CONTENT", f"Invalid field name '{k}' for sublist '{path}'.", f"{path}.{k}")
                out[k] = self._clean_value(kind, val, f"{path}.items[{i}].{k}")
            lines.append(out)
        return lines

    def _period_for(self, date: str | None) -> dict[str, Any] | None:
        if not date:
            return None
        row = self.store.conn.execute(
            "SELECT data FROM records WHERE type='accountingPeriod' "
            "AND json_extract(data,'$.startDate') <= ? AND json_extract(data,'$.endDate') >= ? "
            "AND json_extract(data,'$.isQuarter') IS NOT 1 AND json_extract(data,'$.isYear') IS NOT 1 "
            "ORDER BY CAST(id AS INTEGER) LIMIT 1",
            (date, date),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def _check_period(self, rtype: str, date: str | None, subsidiary: Any = None) -> dict[str, Any] | None:
        period = self._period_for(date)
        if period is None or rtype not in POSTING_LOCKS or self._seeding:
            return period
        flags = ("closed", "isLocked", "allLocked", *POSTING_LOCKS[rtype])
        # OneWorld: the Period Close Checklist can lock a period for some subsidiaries only.
        locked_for = {s for s in str(period.get(SUBSIDIARY_LOCKS) or "").split(",") if s}
        sub_id = str(subsidiary.get("id")) if isinstance(subsidiary, dict) and subsidiary.get("id") else None
        if any(period.get(f) for f in flags) or (sub_id is not None and sub_id in locked_for):
            raise fail(
                400,
                "PERIOD_LOCKED",
                f"The accounting period {period.get('periodName')} is locked or closed; "
                f"you cannot post a {rtype} dated {date} into it.",
                "tranDate",
            )
        return period

    def _derive(self, rtype: str, data: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rtype in TRANSACTIONS or rtype == "timeBill":
            data.setdefault("tranDate", dt.date.today().isoformat())
            ent_key = "customer" if rtype in ("customerPayment", "timeBill") else "entity"
            ent = data.get(ent_key)
            ent_rec = None
            if ent:
                ent_rec = self.store.get("customer", ent["id"]) or self.store.get("job", ent["id"])
            if not data.get("subsidiary") and ent_rec and ent_rec.get("subsidiary"):
                data["subsidiary"] = ent_rec["subsidiary"]
            if not data.get("currency") and ent_rec and ent_rec.get("currency"):
                data["currency"] = ent_rec["currency"]
            if rtype == "timeBill" and not data.get("subsidiary") and data.get("employee"):
                emp = self.store.get("employee", data["employee"]["id"])
                if emp and emp.get("subsidiary"):
                    data["subsidiary"] = emp["subsidiary"]
            period = self._check_period(rtype, data.get("tranDate"), data.get("subsidiary"))
            if old is not None and old.get("tranDate") != data.get("tranDate"):
                self._check_period(rtype, old.get("tranDate"), old.get("subsidiary"))
            data["postingPeriod"] = {"id": period["id"], "refName": period.get("periodName")} if period else None
        if rtype in (*TRANSACTIONS, "timeBill", "customer", "job", "employee") and (
            not data.get("currency") and data.get("subsidiary")
        ):
            sub = self.store.get("subsidiary", data["subsidiary"]["id"])
            if sub and sub.get("currency"):
                data["currency"] = sub["currency"]
        if rtype in _STATUS and not data.get("status"):
            code = _DEFAULT_STATUS[rtype]
            data["status"] = {"id": code, "refName": _STATUS[rtype][code]}
        if rtype == "salesOrder":
            lines = data.get("item") or []
            billed = float(data.get("amountBilled") or 0) >= float(data.get("total") or 0) - 0.004 > 0
            code = "H" if lines and all(x.get("isClosed") for x in lines) else ("G" if billed else "F")
            data["status"] = {"id": code, "refName": _STATUS["salesOrder"][code]}
        if isinstance(data.get("item"), list):
            total = 0.0
            for line in data["item"]:
                q = line.get("quantity")
                rate, amt = line.get("rate"), line.get("amount")
                if q is None:
                    line["quantity"] = q = 1
                if amt is None and rate is not None:
                    line["amount"] = amt = _money(q * rate)
                if rate is None and amt is not None and q:
                    line["rate"] = amt / q
                total += float(line.get("amount") or 0)
            _number_lines(data["item"])
            tax = sum(float(line.get("tax1Amt") or 0) for line in data["item"])
            data["subtotal"] = _money(total)
            data["taxTotal"] = _money(tax)
            data["total"] = _money(total + tax)
        if rtype in ("invoice", "creditMemo"):
            paid = float(data.get("amountPaid") or data.get("applied") or 0)
            data["amountRemaining"] = _money(float(data.get("total") or 0) - paid)
            if rtype == "invoice":
                data.setdefault("amountPaid", 0)
        if rtype == "journalEntry":
            lines = data.get("line") or []
            _number_lines(lines)
            if not lines:
                raise fail(400, "USER_ERROR", "Please enter value(s) for: Lines", "line")
            dr = sum(float(x.get("debit") or 0) for x in lines)
            cr = sum(float(x.get("credit") or 0) for x in lines)
            if abs(dr - cr) > 0.005:
                raise fail(
                    400,
                    "USER_ERROR",
                    f"The total of debit lines ({dr:.2f}) must equal the total of credit lines ({cr:.2f}).",
                    "line",
                )
            data["total"] = _money(dr)
        if rtype == "customerPayment":
            applied = sum(float(x.get("amount") or 0) for x in data.get("apply") or [] if x.get("apply", True))
            if data.get("payment") is None:
                data["payment"] = _money(applied)
            data["applied"] = _money(applied)
            data["unapplied"] = _money(float(data["payment"]) - applied)
            data["total"] = data["payment"]
        if rtype in ("customer", "job", "employee") and not data.get("entityId"):
            data["entityId"] = (
                data.get("companyName")
                or " ".join(x for x in (data.get("firstName"), data.get("lastName")) if x)
                or data["id"]
            )

    _REQUIRED = {
        "customer": ("subsidiary",),
        "job": ("companyName", "parent"),
        "employee": ("subsidiary",),
        "subsidiary": ("name",),
        "accountingPeriod": ("periodName", "startDate", "endDate"),
        "salesOrder": ("entity",),
        "invoice": ("entity",),
        "creditMemo": ("entity",),
        "customerPayment": ("customer",),
        "journalEntry": ("subsidiary",),
        "timeBill": ("employee", "hours"),
        "serviceItem": ("itemId",),
        "account": ("acctName",),
        "currency": ("name",),
    }

    def _check_required(self, rtype: str, data: dict[str, Any]) -> None:
        missing = [f for f in self._REQUIRED.get(rtype, ()) if data.get(f) in (None, "")]
        if rtype in ("salesOrder", "invoice", "creditMemo"):  # every item line names its item
            for n, line in enumerate(data.get("item") or []):
                if not line.get("item"):
                    raise fail(400, "USER_ERROR", "Please enter value(s) for: Item", f"item.items[{n}].item")
        if rtype == "customer" and not data.get("isPerson") and not data.get("companyName"):
            missing.append("companyName")
        if missing:
            raise fail(400, "USER_ERROR", f"Please enter value(s) for: {', '.join(missing)}", missing[0])

    def _insert(self, rtype: str, vals: dict[str, Any]) -> str:
        ext = vals.get("externalId")
        if ext is not None:
            vals["externalId"] = ext = str(ext)
            if self.store.find_by_ext(rtype, ext):
                raise fail(
                    400,
                    "DUPLICATE_EXTERNAL_ID",
                    f"A {rtype} record with the external ID {ext} already exists.",
                    "externalId",
                )
        n = self.store.next_counter(ID_SPACE.get(rtype, rtype))
        rid = str(n)
        now = ns_now()
        data: dict[str, Any] = {"id": rid, **vals, "createdDate": now, "lastModifiedDate": now}
        if rtype in _TRAN_PREFIX and not data.get("tranId"):
            k = self.store.next_counter("tranid:" + rtype)
            data["tranId"] = f"{_TRAN_PREFIX[rtype]}{1000 + k}"
        self._check_required(rtype, data)
        self._derive(rtype, data, None)
        self.store.insert(rtype, rid, data, ext)
        self._after_write(rtype, data, None)
        return rid

    def _update(
        self, rtype: str, old: dict[str, Any], vals: dict[str, Any], replace: frozenset[str] = frozenset()
    ) -> None:
        """PATCH / upsert of an existing record: body fields replace, sublists merge the
        NetSuite way ("Updating a Sublist"): a line whose key matches an existing line
        updates it, other lines are added; with `?replace=<sublist>` the lines not in the
        request are removed ("Replacing a Sublist")."""
        for name, kind in RECORDS[rtype].items():
            if kind.startswith("sublist:") and isinstance(vals.get(name), list):
                vals[name] = _merge_lines(kind[8:], old.get(name) or [], vals[name], name in replace)
        if "externalId" in vals and vals["externalId"] != old.get("externalId"):
            ext = str(vals["externalId"]) if vals["externalId"] is not None else None
            vals["externalId"] = ext
            if ext and any(m["id"] != old["id"] for m in self.store.find_by_ext(rtype, ext)):
                raise fail(
                    400,
                    "DUPLICATE_EXTERNAL_ID",
                    f"A {rtype} record with the external ID {ext} already exists.",
                    "externalId",
                )
        if rtype in POSTING_LOCKS and old.get("tranDate"):
            self._check_period(rtype, old.get("tranDate"), old.get("subsidiary"))
        data = {**old, **vals, "lastModifiedDate": ns_now()}
        self._check_required(rtype, data)
        self._derive(rtype, data, old)
        self.store.update(rtype, old["id"], data, data.get("externalId"))
        self._after_write(rtype, data, old)

    def _apply_credit(self, memo: dict[str, Any], previous: float, remove: bool = False) -> None:
        """A credit memo created from an invoice is applied to it (up to what is open);
        `previous` is what this memo had applied before (an edit re-applies)."""
        inv = self.store.get("invoice", (memo.get("createdFrom") or {}).get("id", ""))
        if inv is None:
            return
        paid = float(inv.get("amountPaid") or 0) - previous
        total = float(inv.get("total") or 0)
        applied = 0.0 if remove else _money(max(0.0, min(float(memo.get("total") or 0), total - paid)))
        inv["amountPaid"] = _money(paid + applied)
        inv["amountRemaining"] = _money(total - inv["amountPaid"])
        inv["status"] = (
            {"id": "B", "refName": "Paid In Full"}
            if inv["amountRemaining"] <= 0.004
            else {"id": "A", "refName": "Open"}
        )
        inv["lastModifiedDate"] = ns_now()
        self.store.update("invoice", inv["id"], inv, inv.get("externalId"))
        if remove:
            return
        memo["applied"] = applied
        memo["amountRemaining"] = _money(float(memo.get("total") or 0) - applied)
        memo["status"] = (
            {"id": "B", "refName": "Fully Applied"}
            if memo["amountRemaining"] <= 0.004
            else {"id": "A", "refName": "Open"}
        )
        self.store.update("creditMemo", memo["id"], memo, memo.get("externalId"))

    def _after_write(self, rtype: str, data: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rtype == "creditMemo" and (data.get("createdFrom") or {}).get("id"):
            self._apply_credit(data, float((old or {}).get("applied") or 0))
        if self._seeding:
            return
        custom = {k: v for k, v in data.items() if k.startswith("custbody")}
        if rtype == "invoice" and old is None:
            self.emit(
                "invoice.posted",
                {
                    "invoice_id": data["id"],
                    "external_id": data.get("externalId"),
                    "tran_id": data.get("tranId"),
                    "entity_id": (data.get("entity") or {}).get("id"),
                    "subsidiary_id": (data.get("subsidiary") or {}).get("id"),
                    "currency": (data.get("currency") or {}).get("refName"),
                    "total": data.get("total"),
                    "tran_date": data.get("tranDate"),
                    "created_from": (data.get("createdFrom") or {}).get("id"),
                    **custom,
                },
                f"invoice:{data['id']}",
            )
        elif rtype == "creditMemo" and old is None:
            self.emit(
                "credit_memo.posted",
                {
                    "credit_memo_id": data["id"],
                    "external_id": data.get("externalId"),
                    "entity_id": (data.get("entity") or {}).get("id"),
                    "total": data.get("total"),
                    "currency": (data.get("currency") or {}).get("refName"),
                    **custom,
                },
                f"creditMemo:{data['id']}",
            )
        elif rtype == "customerPayment" and old is None:
            applied = []
            for line in data.get("apply") or []:
                if not line.get("apply", True) or not line.get("doc"):
                    continue
                inv = self.store.get("invoice", line["doc"]["id"])
                if inv is None:
                    continue
                inv["amountPaid"] = _money(float(inv.get("amountPaid") or 0) + float(line.get("amount") or 0))
                inv["amountRemaining"] = _money(float(inv.get("total") or 0) - inv["amountPaid"])
                if inv["amountRemaining"] <= 0.004:
                    inv["status"] = {"id": "B", "refName": "Paid In Full"}
                inv["lastModifiedDate"] = ns_now()
                self.store.update("invoice", inv["id"], inv, inv.get("externalId"))
                applied.append(
                    {
                        "invoice_id": inv["id"],
                        "amount": line.get("amount"),
                        "invoice_status": inv["status"]["refName"],
                        "invoice_external_id": inv.get("externalId"),
                        **{k: v for k, v in inv.items() if k.startswith("custbody")},
                    }
                )
            self.emit(
                "payment.received",
                {
                    "payment_id": data["id"],
                    "external_id": data.get("externalId"),
                    "customer_id": (data.get("customer") or {}).get("id"),
                    "amount": data.get("payment"),
                    "currency": (data.get("currency") or {}).get("refName"),
                    "tran_date": data.get("tranDate"),
                    "applied": applied,
                },
                f"customerPayment:{data['id']}",
            )

    def _render(
        self, rtype: str, data: dict[str, Any], fields: str | None = None, expand: bool = False
    ) -> dict[str, Any]:
        """A record as GET returns it: sublists collapsed to a link unless
        `expandSubResources=true` ("Expanding Sublists, Subrecords, and Multiselect Fields")."""
        out: dict[str, Any] = {"links": [{"rel": "self", "href": self._href(rtype, data["id"])}]}
        keep = None
        if fields:
            keep = {f.strip().lower() for f in fields.split(",")} | {"id"}
        for k, v in data.items():
            if keep is not None and k.lower() not in keep:
                continue
            if isinstance(v, list) and not expand:
                out[k] = {"links": [{"rel": "self", "href": self._href(rtype, data["id"]) + "/" + k}]}
            elif isinstance(v, list):
                out[k] = {
                    "links": [{"rel": "self", "href": self._href(rtype, data["id"]) + "/" + k}],
                    "items": v,
                    "count": len(v),
                    "hasMore": False,
                    "offset": 0,
                    "totalResults": len(v),
                }
            else:
                out[k] = v
        return out

    # ---- record routes ------------------------------------------------------------
    def _created(self, rtype: str, rid: str) -> Response:
        return Response(status_code=204, headers={"location": self._href(rtype, rid)})

    async def collection(self, req: Request, rtype: str) -> Response:
        t = self._type(rtype)
        limit = max(1, min(1000, int(req.query_params.get("limit", "1000"))))
        offset = max(0, int(req.query_params.get("offset", "0")))
        c = self.store.conn
        q = req.query_params.get("q")
        if q:
            try:
                matches = compile_filter(q, lambda name: self._filter_field(t, name))
            except FilterError as e:
                raise fail(400, "INVALID_PARAMETER", f"Invalid query parameter q: {e}") from None
            rows = c.execute("SELECT id, data FROM records WHERE type=? ORDER BY CAST(id AS INTEGER)", (t,))
            found = [rid for rid, data in rows if matches(json.loads(data))]
            total, ids = len(found), found[offset : offset + limit]
        else:
            total = int(c.execute("SELECT COUNT(*) FROM records WHERE type=?", (t,)).fetchone()[0])
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM records WHERE type=? ORDER BY CAST(id AS INTEGER) LIMIT ? OFFSET ?",
                    (t, limit, offset),
                )
            ]
        base = f"{self.settings.base_url()}{REC}/{t}"
        return json_response(
            self._page(
                base,
                "GET",
                (ids and [{"links": [{"rel": "self", "href": f"{base}/{i}"}], "id": i} for i in ids]) or [],
                limit,
                offset,
                total,
            )
        )

    @staticmethod
    def _page(
        base: str, method: str, items: list[dict[str, Any]], limit: int, offset: int, total: int
    ) -> dict[str, Any]:
        has_more = offset + len(items) < total
        sep = "&" if "?" in base else "?"
        links = []
        if offset > 0:
            links.append({"rel": "previous", "href": f"{base}{sep}limit={limit}&offset={max(0, offset - limit)}"})
        links.append({"rel": "first", "href": f"{base}{sep}limit={limit}&offset=0"})
        if has_more:
            links.append({"rel": "next", "href": f"{base}{sep}limit={limit}&offset={offset + limit}"})
        last = max(0, (total - 1) // limit * limit) if total else 0
        links.append({"rel": "last", "href": f"{base}{sep}limit={limit}&offset={last}"})
        links.append({"rel": "self", "href": f"{base}{sep}limit={limit}&offset={offset}"})
        return {
            "links": links,
            "count": len(items),
            "hasMore": has_more,
            "items": items,
            "offset": offset,
            "totalResults": total,
        }

    async def get(self, req: Request, rtype: str, key: str) -> Response:
        t = self._type(rtype)
        expand = req.query_params.get("expandSubResources", "").lower() == "true"
        return json_response(self._render(t, self._must(t, key), req.query_params.get("fields"), expand))

    async def create(self, req: Request, rtype: str) -> Response:
        t = self._type(rtype)
        vals = self._clean(t, await read_json(req))
        with self.store.tx():
            rid = self._insert(t, vals)
        return self._created(t, rid)

    async def patch(self, req: Request, rtype: str, key: str) -> Response:
        t = self._type(rtype)
        vals = self._clean(t, await read_json(req))
        replace = self._replace(req, t)
        with self.store.tx():
            old = self._must(t, key)
            self._update(t, old, vals, replace)
        return Response(status_code=204)

    async def put(self, req: Request, rtype: str, key: str) -> Response:
        t = self._type(rtype)
        if not key.startswith("eid:"):
            raise fail(405, "INVALID_REQUEST", "PUT is only supported with an external id (.../eid:<externalId>).")
        ext = key[4:]
        vals = self._clean(t, await read_json(req))
        if vals.get("externalId") not in (None, ext):
            raise fail(400, "INVALID_CONTENT", "externalId in the body does not match the URL.", "externalId")
        vals["externalId"] = ext
        replace = self._replace(req, t)
        with self.store.tx():
            old = self._find(t, key)
            if old is None:
                rid = self._insert(t, vals)
            else:
                self._update(t, old, vals, replace)
                rid = old["id"]
        return self._created(t, rid)

    def _filter_field(self, rtype: str, name: str) -> tuple[str, str]:
        fk = self._field_kind(rtype, name)
        if fk is None or fk[1].startswith("sublist:"):
            raise FilterError(f"unknown field {name!r} for record type {rtype!r}")
        f, kind = fk
        return f, kind[3:] if kind.startswith("ro:") else kind

    def _replace(self, req: Request, rtype: str) -> frozenset[str]:
        """`?replace=item,apply`: the sublists whose lines the request replaces."""
        names = {n.strip() for n in req.query_params.get("replace", "").split(",") if n.strip()}
        sublists = {f.lower(): f for f, k in RECORDS[rtype].items() if k.startswith("sublist:")}
        unknown = [n for n in names if n.lower() not in sublists]
        if unknown:
            raise fail(
                400,
                "INVALID_PARAMETER",
                f"Invalid replace parameter: {', '.join(unknown)} is not a sublist of {rtype}.",
            )
        return frozenset(sublists[n.lower()] for n in names)

    def _dependents(self, rtype: str, rid: str) -> list[str]:
        """Records that reference this one (NetSuite refuses to delete a referenced record)."""
        found = []
        for other, field in schema.REFERENCES.get(rtype, ()):
            row = self.store.conn.execute(
                f"SELECT id FROM records WHERE type=? AND json_extract(data,'$.{field}.id')=? LIMIT 1", (other, rid)
            ).fetchone()
            if row is not None:
                found.append(f"{other} {row[0]} ({field})")
        return found

    async def delete(self, req: Request, rtype: str, key: str) -> Response:
        t = self._type(rtype)
        with self.store.tx():
            old = self._must(t, key)
            dependents = self._dependents(t, old["id"])
            if dependents:
                raise fail(
                    400,
                    "THIS_RECORD_CANNOT_BE_DELETED_BECAUSE_IT_HAS_DEPENDENT_RECORDS",
                    f"This record cannot be deleted because it has dependent records: {', '.join(dependents[:5])}.",
                )
            if t in POSTING_LOCKS:
                self._check_period(t, old.get("tranDate"), old.get("subsidiary"))
            if t == "creditMemo" and (old.get("createdFrom") or {}).get("id"):
                self._apply_credit(old, float(old.get("applied") or 0), remove=True)
            self.store.delete(t, old["id"])
        return Response(status_code=204)

    async def transform(self, req: Request, rtype: str, key: str, target: str) -> Response:
        src_t = self._type(rtype)
        tgt_t = self._type(target)
        allowed = {("salesOrder", "invoice"), ("invoice", "creditMemo"), ("invoice", "customerPayment")}
        if (src_t, tgt_t) not in allowed:
            raise fail(400, "INVALID_REQUEST", f"Transformation {src_t} -> {tgt_t} is not supported.")
        vals = self._clean(tgt_t, await read_json(req) or {})
        with self.store.tx():
            src = self._must(src_t, key)
            if src_t == "salesOrder" and (src.get("status") or {}).get("id") in ("G", "H"):
                raise fail(
                    400,
                    "USER_ERROR",
                    f"The sales order {src.get('tranId')} is {src['status']['refName'].lower()} and cannot be billed.",
                )
            base: dict[str, Any]
            if tgt_t == "customerPayment":
                base = {
                    "customer": src.get("entity"),
                    "subsidiary": src.get("subsidiary"),
                    "currency": src.get("currency"),
                    "apply": [{"doc": {"id": src["id"]}, "amount": src.get("amountRemaining"), "apply": True}],
                }
            else:
                base = {
                    k: v
                    for k, v in src.items()
                    if k in ("entity", "subsidiary", "currency", "memo", "terms", "job", "otherRefNum")
                    or k.startswith("custbody")
                }
                # closed lines bill nothing; the new record numbers its own lines
                base["item"] = [
                    {k: v for k, v in line.items() if k not in ("line", "isClosed")}
                    for line in src.get("item") or []
                    if not line.get("isClosed")
                ]
            base["createdFrom"] = {"id": src["id"], "refName": src.get("tranId")}
            base.update(vals)
            if tgt_t == "customerPayment":
                base.pop("createdFrom", None)
            rid = self._insert(tgt_t, base)
            if src_t == "salesOrder":
                billed = _money(float(src.get("amountBilled") or 0) + float(self.store.get(tgt_t, rid)["total"] or 0))  # type: ignore[index]
                src["amountBilled"] = billed
                if billed >= float(src.get("total") or 0) - 0.004:
                    src["status"] = {"id": "G", "refName": "Billed"}
                src["lastModifiedDate"] = ns_now()
                self.store.update(src_t, src["id"], src, src.get("externalId"))
        return self._created(tgt_t, rid)

    # ---- SuiteQL ------------------------------------------------------------------
    async def suiteql(self, req: Request) -> Response:
        body = await read_json(req)
        q = body.get("q") if isinstance(body, dict) else None
        if not q or not isinstance(q, str):
            raise fail(400, "INVALID_PARAMETER", "The request body must contain a query in 'q'.")
        try:
            limit = int(req.query_params.get("limit", "1000"))
            offset = int(req.query_params.get("offset", "0"))
        except ValueError:
            raise fail(400, "INVALID_PARAMETER", "limit and offset must be integers.") from None
        if not 1 <= limit <= 1000 or offset < 0:
            raise fail(400, "INVALID_PARAMETER", "limit must be from 1 to 1000 and offset not negative.")
        try:
            items, total = suiteql.run(
                self.store.conn, q, self.tables, self.settings.netsuite_date_format, limit, offset, self.custom_fields
            )
        except suiteql.SuiteQLError as e:
            return _query_error(str(e))
        base = f"{self.settings.base_url()}/services/rest/query/v1/suiteql"
        return json_response(self._page(base, "POST", items, limit, offset, total))

    # ---- async requests + idempotency keys ---------------------------------------
    async def dispatch(self, req: Request, handler: Handler, params: dict[str, str]) -> Response:
        if (
            req.method in ("POST", "PUT", "PATCH", "DELETE")
            and req.scope["path"].startswith(REC)
            and "respond-async" in req.headers.get("prefer", "").lower()
        ):
            return await self._async_request(req, handler, params)
        return await self.invoke(req, handler, params)

    def _job_url(self, jid: int | str) -> str:
        return f"{self.settings.base_url()}{ASYNC}/job/{jid}"

    async def _async_request(self, req: Request, handler: Handler, params: dict[str, str]) -> Response:
        """`Prefer: respond-async`: run the request as a job (done at once) and answer 202.
        A repeated `X-NetSuite-Idempotency-Key` gets 400 IDEMPOTENCY_ERROR + the first job."""
        key = req.headers.get("x-netsuite-idempotency-key") or None
        c = self.store.conn
        if key:
            row = c.execute("SELECT id FROM jobs WHERE idem_key=?", (key,)).fetchone()
            if row is not None:
                return ns_error(
                    400,
                    "IDEMPOTENCY_ERROR",
                    f"A request with the idempotency key {key} has already been submitted.",
                    headers={"location": self._job_url(row[0])},
                )
        resp = await self.invoke(req, handler, params)
        location = resp.headers.get("location")
        with self.store.tx():
            jid = c.execute(
                "INSERT INTO jobs(idem_key,status,location,body,created) VALUES(?,?,?,?,?) RETURNING id",
                (key, resp.status_code, location, bytes(resp.body), time.time()),
            ).fetchone()[0]
        return Response(
            status_code=202, headers={"location": self._job_url(jid), "preference-applied": "respond-async"}
        )

    def _job_row(self, jid: str) -> tuple[int, str | None, bytes]:
        if not jid.isdigit():
            raise fail(404, "NONEXISTENT_ID", f"The async job {jid} does not exist.")
        row = self.store.conn.execute("SELECT status, location, body FROM jobs WHERE id=?", (int(jid),)).fetchone()
        if row is None:
            raise fail(404, "NONEXISTENT_ID", f"The async job {jid} does not exist.")
        return int(row[0]), row[1], bytes(row[2] or b"")

    async def job(self, req: Request, jid: str) -> Response:
        status, _loc, _body = self._job_row(jid)
        url = self._job_url(jid)
        return json_response(
            {
                "links": [{"rel": "self", "href": url}],
                "completed": True,
                "id": jid,
                "progress": "succeeded" if status < 300 else "failed",
                "task": {"links": [{"rel": "related", "href": f"{url}/task/{jid}"}]},
            }
        )

    async def job_task(self, req: Request, jid: str, tid: str) -> Response:
        status, _loc, _body = self._job_row(jid)
        url = f"{self._job_url(jid)}/task/{tid}"
        return json_response(
            {
                "links": [{"rel": "self", "href": url}, {"rel": "related", "href": f"{url}/result"}],
                "completed": True,
                "id": tid,
                "progress": "succeeded" if status < 300 else "failed",
            }
        )

    async def job_result(self, req: Request, jid: str, tid: str) -> Response:
        status, loc, body = self._job_row(jid)
        if status < 300:
            return Response(status_code=204, headers={"location": loc} if loc else None)
        return Response(body, status, media_type=ERROR_TYPE)


def create_app(settings: SimSettings | None = None) -> NetSuiteSimulator:
    return NetSuiteSimulator(settings or SimSettings())
