"""`/__admin/...`: inspection, reset, faults and event tooling (never faulted)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .app import KantataSimulator

REFERENCE_FIELD = "d2r reference"


def duplicates(sim: KantataSimulator) -> dict[str, Any]:
    """Records of one subject type that carry the same d2r reference: the same business
    fact written twice (what a blindly retried POST leaves behind)."""
    fields = {f["id"] for f in sim.all("custom_fields") if f["name"] == REFERENCE_FIELD}
    groups: dict[tuple[str, str], list[str]] = {}
    for v in sim.all("custom_field_values"):
        if v["custom_field_id"] in fields:
            groups.setdefault((v["subject_type"], v["value"]), []).append(v["subject_id"])
    out: dict[str, list[dict[str, Any]]] = {}
    for (subject, value), ids in sorted(groups.items()):
        if len(ids) > 1:
            out.setdefault(f"{subject}.d2r_reference", []).append({"key": value, "ids": sorted(ids)})
    return out


def routes(sim: KantataSimulator) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "simulator": sim.name, "instance": sim.settings.instance})

    async def counts(request: Request) -> Response:
        out = sim.store.counts()
        out["subscribed_events"] = int(sim.store.conn.execute("SELECT COUNT(*) FROM subscribed_events").fetchone()[0])
        return JSONResponse(out)

    async def dupes(request: Request) -> Response:
        d = duplicates(sim)
        return JSONResponse({"count": sum(len(v) for v in d.values()), "duplicates": d})

    async def reset(request: Request) -> Response:
        from .seed import seed

        raw = await request.body()
        body = json.loads(raw) if raw else {}
        kind = str(body.get("seed", request.query_params.get("seed", "none")))
        sim.store.reset()
        with sim.store.tx() as c:
            c.execute("DELETE FROM subscribed_events")
        sim.api_usage = 0
        info = seed(sim, kind)
        return JSONResponse({"reset": True, "seed": kind, "seed_info": info})

    async def dump(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        limit = int(request.query_params.get("limit", "1000"))
        offset = int(request.query_params.get("offset", "0"))
        recs = sim.store.dump(rtype, limit, offset)
        return JSONResponse({"type": rtype, "count": len(recs), "offset": offset, "records": recs})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(sim.faults.view())
        if request.method == "DELETE":
            sim.faults.update({}, replace=True)
            return JSONResponse(sim.faults.view())
        raw = await request.body()
        return sim.set_faults(json.loads(raw) if raw else {}, replace=request.method == "PUT")

    async def seed_info(request: Request) -> Response:
        raw = sim.store.get_meta("seed_info")
        return JSONResponse(json.loads(raw) if raw else {"seed": "none"})

    async def expire_tokens(request: Request) -> Response:
        with sim.store.tx():
            sim.store.expire_all_tokens()
        return JSONResponse({"expired": True})

    async def events(request: Request) -> Response:
        """Every stored event, newest first, including ones not yet visible to pollers."""
        return JSONResponse({"events": sim.events.raw(int(request.query_params.get("limit", "200")))})

    async def age_events(request: Request) -> Response:
        raw = await request.body()
        days = float((json.loads(raw) if raw else {}).get("days", 0))
        return JSONResponse({"aged": sim.events.age(days), "days": days})

    async def usage(request: Request) -> Response:
        return JSONResponse({"api_usage": sim.api_usage})

    return [
        Route("/__admin/health", health, methods=["GET"]),
        Route("/__admin/counts", counts, methods=["GET"]),
        Route("/__admin/duplicates", dupes, methods=["GET"]),
        Route("/__admin/reset", reset, methods=["POST"]),
        Route("/__admin/records/{rtype}", dump, methods=["GET"]),
        Route("/__admin/faults", faults, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/__admin/seed-info", seed_info, methods=["GET"]),
        Route("/__admin/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/__admin/events", events, methods=["GET"]),
        Route("/__admin/events/age", age_events, methods=["POST"]),
        Route("/__admin/usage", usage, methods=["GET"]),
    ]
