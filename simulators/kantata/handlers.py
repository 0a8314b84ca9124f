"""The `/api/v1/<type>` and `/api/v1/<type>/<id>` endpoints, generic over the schema.

No idempotency keys: every POST creates, so a client that retries a POST whose
response it lost gets a second record. That is the vendor's behaviour, on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import records
from .records import BadRequest
from .schema import TYPES, Invalid, ObjectType, validate

if TYPE_CHECKING:
    from .app import KantataSimulator

Endpoint = Callable[[Request], Awaitable[Response]]
BULK_MAX = 100


def _error(status: int, message: str, kind: str = "system", field: str | None = None) -> JSONResponse:
    from .app import k_error

    return k_error(status, message, kind, field)


def _type(name: str) -> ObjectType | None:
    return TYPES.get(name.removesuffix(".json"))


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    return json.loads(raw)


def _write_one(sim: KantataSimulator, otype: ObjectType, body: Any, old: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(f"{otype.singular} must be an object")
    custom = body.get("custom_field_values") or []
    if not isinstance(custom, list) or any(not isinstance(c, dict) for c in custom):
        raise Invalid("custom_field_values must be a list of objects", "custom_field_values")
    new = validate(otype, body, old)
    records.before_write(sim, otype, new, old)
    rec = sim.insert(otype.key, new) if old is None else sim.update(otype.key, new)
    records.after_write(sim, otype, rec, old)
    for c in custom:
        _set_custom(sim, otype, rec["id"], c)
    return rec


def _set_custom(sim: KantataSimulator, otype: ObjectType, subject_id: str, c: dict[str, Any]) -> None:
    """Inline custom field values on a create/update (one write with the record)."""
    vtype = TYPES["custom_field_values"]
    body = {"subject_type": otype.subject, "subject_id": subject_id, **c}
    existing = next(
        (
            v
            for v in sim.store.find_by_field("custom_field_values", "subject_id", subject_id)
            if v["subject_type"] == otype.subject and v["custom_field_id"] == str(c.get("custom_field_id"))
        ),
        None,
    )
    new = validate(vtype, body, existing)
    records.before_write(sim, vtype, new, existing)
    if existing is None:
        sim.insert("custom_field_values", new)
    else:
        sim.update("custom_field_values", new)


def collection(sim: KantataSimulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        otype = _type(request.path_params["resource"])
        if otype is None:
            return _error(404, "Unknown resource")
        query = dict(request.query_params)
        try:
            if request.method == "GET":
                return JSONResponse(records.listing(sim, otype, query))
            if not otype.writable:
                return _error(405, f"{otype.key} can't be created through the API")
            body = await _json(request)
            if not isinstance(body, dict):
                raise Invalid("expected a JSON object")
            if otype.key in body:
                items = body[otype.key]
                if not isinstance(items, list) or not 1 <= len(items) <= BULK_MAX:
                    raise Invalid(f"{otype.key} must be a list of 1 to {BULK_MAX} objects", otype.key)
            elif otype.singular in body:
                items = [body[otype.singular]]
            else:
                raise Invalid(f"expected a top-level {otype.singular!r} (or {otype.key!r}) key")
            with sim.store.tx():
                created = [_write_one(sim, otype, item, None) for item in items]
            return JSONResponse(
                records.envelope(sim, otype, created, len(created), query.get("include", "")), status_code=200
            )
        except Invalid as e:
            return _error(422, e.message, "validation", e.field)
        except BadRequest as e:
            return _error(400, e.message)
        except json.JSONDecodeError as e:
            return _error(400, f"Invalid JSON: {e}")

    return endpoint


def member(sim: KantataSimulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        otype = _type(request.path_params["resource"])
        if otype is None:
            return _error(404, "Unknown resource")
        rid = request.path_params["rid"].removesuffix(".json")
        query = dict(request.query_params)
        rec = sim.store.get(otype.key, rid)
        # archived records are hidden by default filters, the show route included
        if rec is None or not records.visible(otype, rec, query):
            return _error(404, f"{otype.singular} {rid} not found")
        try:
            if request.method == "GET":
                return JSONResponse(records.envelope(sim, otype, [rec], 1, query.get("include", "")))
            if not otype.writable:
                return _error(405, f"{otype.key} can't be changed through the API")
            if request.method == "DELETE":
                with sim.store.tx():
                    records.before_delete(sim, otype, rec)
                    sim.delete(otype.key, rec)
                    records.after_delete(sim, otype, rec)
                return Response(status_code=204)
            body = await _json(request)
            if not isinstance(body, dict) or otype.singular not in body:
                raise Invalid(f"expected a top-level {otype.singular!r} key")
            with sim.store.tx():
                updated = _write_one(sim, otype, body[otype.singular], rec)
            return JSONResponse(records.envelope(sim, otype, [updated], 1, query.get("include", "")))
        except Invalid as e:
            return _error(422, e.message, "validation", e.field)
        except BadRequest as e:
            return _error(400, e.message)
        except json.JSONDecodeError as e:
            return _error(400, f"Invalid JSON: {e}")

    return endpoint
