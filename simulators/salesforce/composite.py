"""The Composite resources: `/composite` (up to 25 subrequests in one transaction when
`allOrNone`, later ones referring to earlier results as `@{referenceId.field}`),
`/composite/batch` (up to 25 independent subrequests, `haltOnError`) and
`/composite/tree/<Object>` (a record tree inserted all or nothing). Subrequests run
through the simulator's own routes, so they are judged exactly like single calls, and
count as one API call together, as Salesforce counts them."""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from .._http import HTTPError, Request, Response, json_response, read_json
from . import schema

if TYPE_CHECKING:
    from .app import SalesforceSimulator

MAX_SUBREQUESTS = 25
MAX_TREE_RECORDS = 200
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Sub:
    """One subrequest's outcome."""

    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        self.status, self.headers, self.body = status, headers, body


def _error(status: int, code: str, message: str) -> HTTPError:
    return HTTPError(json_response([{"message": message, "errorCode": code}], status))


async def _run(sim: SalesforceSimulator, parent: Request, method: str, url: str, body: Any) -> _Sub:
    """Send one subrequest through the simulator's router (no second auth or usage count)."""
    path, _, qs = url.partition("?")
    if not path.startswith("/"):
        path = "/services/data/" + path  # batch subrequest urls are relative: "v61.0/sobjects/..."
    path = path.rstrip("/")
    raw = b"" if body is None else json.dumps(body).encode()
    scope = {
        **{k: parent.scope[k] for k in ("type", "http_version", "scheme", "server", "client") if k in parent.scope},
        "method": method.upper(),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": qs.encode(),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    status, headers, chunks = 500, {}, []

    async def send(msg: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if msg["type"] == "http.response.start":
            status = msg["status"]
            headers = {k.decode(): v.decode() for k, v in msg.get("headers", ())}
        elif msg["type"] == "http.response.body":
            chunks.append(msg.get("body", b""))

    await sim.router(scope, receive, send)
    data = b"".join(chunks)
    out: dict[str, str] = {}
    if "location" in headers:
        out["Location"] = headers["location"]
    return _Sub(status, out, json.loads(data) if data else None)


def _resolve(value: Any, results: dict[str, _Sub]) -> Any:
    """Replace `@{ref.path}` in strings (url and body) with values from earlier results."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        ref, path = m.group(1), m.group(2)
        sub = results.get(ref)
        if sub is None or sub.status >= 400:
            raise _Unresolved(ref, f"{ref}{path}")
        cur: Any = sub.body
        for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            key, index = step
            try:
                cur = cur[int(index)] if index else cur[key]
            except (KeyError, IndexError, TypeError):
                raise _Unresolved(ref, f"{ref}{path}") from None
        return str(cur)

    return _REF.sub(one, value)


class _Unresolved(Exception):
    def __init__(self, ref: str, expr: str) -> None:
        super().__init__(expr)
        self.ref, self.expr = ref, expr


async def composite(sim: SalesforceSimulator, req: Request, ver: str) -> Response:
    body = await read_json(req) or {}
    subs = body.get("compositeRequest")
    if not isinstance(subs, list) or not subs:
        raise _error(400, "JSON_PARSER_ERROR", "compositeRequest is required")
    if len(subs) > MAX_SUBREQUESTS:
        raise _error(400, "LIMIT_EXCEEDED", f"Composite request cannot contain more than {MAX_SUBREQUESTS} subrequests")
    all_or_none = bool(body.get("allOrNone"))
    refs = [str(s.get("referenceId") or "") if isinstance(s, dict) else "" for s in subs]
    if any(not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", r) for r in refs):
        raise _error(400, "INVALID_INPUT", "Each subrequest needs a referenceId of letters, digits and underscores")
    if len(set(refs)) != len(refs):
        raise _error(400, "INVALID_INPUT", "Duplicate referenceId provided in the request")
    results: dict[str, _Sub] = {}
    out: list[dict[str, Any]] = []
    failed = False
    with sim.store.tx() as c:
        c.execute("SAVEPOINT composite")
        for sub, ref in zip(subs, refs, strict=True):
            if failed and all_or_none:
                res = _Sub(400, {}, [{"errorCode": "PROCESSING_HALTED", "message": _HALTED}])
            else:
                try:
                    url = _resolve(str(sub.get("url", "")), results)
                    payload = _resolve(sub.get("body"), results)
                except _Unresolved as e:
                    msg = (
                        f"Invalid reference specified. No value for {e.expr} found in {e.ref}. "
                        f"Provided referenceId ('{e.ref}') refers to a failed subrequest or is not defined."
                    )
                    res = _Sub(400, {}, [{"errorCode": "PROCESSING_HALTED", "message": msg}])
                else:
                    res = await _run(sim, req, str(sub.get("method", "GET")), url, payload)
            results[ref] = res
            failed = failed or res.status >= 400
            out.append({"body": res.body, "httpHeaders": res.headers, "httpStatusCode": res.status, "referenceId": ref})
        if failed and all_or_none:
            c.execute("ROLLBACK TO composite")
            for item in out:
                if item["httpStatusCode"] < 400:
                    item.update(
                        body=[{"errorCode": "PROCESSING_HALTED", "message": _HALTED}],
                        httpHeaders={},
                        httpStatusCode=400,
                    )
        c.execute("RELEASE composite")
    return json_response({"compositeResponse": out})


async def batch(sim: SalesforceSimulator, req: Request, ver: str) -> Response:
    """Independent subrequests, each committed on its own; `haltOnError` stops at the first error."""
    body = await read_json(req) or {}
    subs = body.get("batchRequests")
    if not isinstance(subs, list) or not subs:
        raise _error(400, "JSON_PARSER_ERROR", "batchRequests is required")
    if len(subs) > MAX_SUBREQUESTS:
        raise _error(400, "LIMIT_EXCEEDED", f"A batch cannot contain more than {MAX_SUBREQUESTS} subrequests")
    halt = bool(body.get("haltOnError"))
    results: list[dict[str, Any]] = []
    halted = False
    for sub in subs:
        if halted:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}
                    ],
                }
            )
            continue
        res = await _run(sim, req, str(sub.get("method", "GET")), str(sub.get("url", "")), sub.get("richInput"))
        results.append({"statusCode": res.status, "result": res.body})
        halted = halt and res.status >= 400
    return json_response({"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results})


def _flatten(
    sim: SalesforceSimulator, obj: str, records: Any, parent: tuple[str, str] | None, out: list[tuple[Any, ...]]
) -> None:
    """(object, referenceId, fields, (parent referenceId, reference field) | None), parents first."""
    if not isinstance(records, list):
        raise _error(400, "JSON_PARSER_ERROR", "records must be a list")
    o = sim._obj(obj)
    for rec in records:
        attrs = rec.get("attributes") or {} if isinstance(rec, dict) else {}
        ref = attrs.get("referenceId")
        if not isinstance(rec, dict) or not ref or (attrs.get("type") or "").lower() != o.name.lower():
            raise _error(400, "INVALID_INPUT", f"Each {o.name} record needs attributes.type and attributes.referenceId")
        fields: dict[str, Any] = {}
        kids: list[tuple[str, Any]] = []
        for k, v in rec.items():
            if k == "attributes":
                continue
            rel = schema.CHILD_RELS.get((o.name, k.lower()))
            if rel is not None and isinstance(v, dict):
                kids.append((k, v))
            else:
                fields[k] = v
        out.append((o.name, ref, fields, parent))
        for k, v in kids:
            _name, child, ref_field = schema.CHILD_RELS[(o.name, k.lower())]
            _flatten(sim, child, v.get("records"), (ref, ref_field), out)


async def tree(sim: SalesforceSimulator, req: Request, ver: str, obj: str) -> Response:
    """Insert a tree of new records (parents before children), all or nothing."""
    body = await read_json(req) or {}
    flat: list[tuple[Any, ...]] = []
    _flatten(sim, obj, body.get("records"), None, flat)
    if len(flat) > MAX_TREE_RECORDS:
        raise _error(400, "LIMIT_EXCEEDED", f"A tree cannot contain more than {MAX_TREE_RECORDS} records")
    ids: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    with sim.store.tx() as c:
        c.execute("SAVEPOINT tree")
        for rtype, ref, fields, parent in flat:
            if parent is not None:
                fields = {**fields, parent[1]: ids[parent[0]]}
            res = await _run(sim, req, "POST", f"/services/data/v{ver}/sobjects/{rtype}", fields)
            if res.status >= 400:
                c.execute("ROLLBACK TO tree")
                c.execute("RELEASE tree")
                errors = [
                    {"statusCode": e.get("errorCode"), "message": e.get("message"), "fields": e.get("fields", [])}
                    for e in res.body or []
                ]
                return json_response({"hasErrors": True, "results": [{"referenceId": ref, "errors": errors}]}, 400)
            ids[ref] = res.body["id"]
            results.append({"referenceId": ref, "id": res.body["id"]})
        c.execute("RELEASE tree")
    return json_response({"hasErrors": False, "results": results}, 201)
