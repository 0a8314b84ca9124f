"""The `/__admin` surface every simulator has: health, counts, duplicates, records, reset
and reseed, faults, seed info, webhook outbox, token expiry. Not part of any vendor API:
tests, demos and people use it to inspect and steer a simulator."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.routing import Route

from ._http import Request, Response, json_response, read_json

if TYPE_CHECKING:
    from ._app import BaseSimulator


def admin_routes(sim: BaseSimulator) -> list[Route]:
    async def health(req: Request) -> Response:
        return json_response({"status": "ok", "simulator": sim.name, "instance": sim.settings.instance})

    async def counts(req: Request) -> Response:
        return json_response(sim.store.counts())

    async def duplicates(req: Request) -> Response:
        d = sim.duplicates()
        return json_response({"count": sum(len(v) for v in d.values()), "duplicates": d})

    async def reset(req: Request) -> Response:
        body = await read_json(req) or {}
        seed = str(body.get("seed", req.query_params.get("seed", "none")))
        sim.store.reset()
        sim._tokens.clear()
        sim.api_usage = 0
        info = sim.seed(seed)
        return json_response({"reset": True, "seed": seed, "seed_info": info})

    async def records(req: Request, rtype: str) -> Response:
        limit = int(req.query_params.get("limit", "1000"))
        offset = int(req.query_params.get("offset", "0"))
        recs = sim.store.dump(rtype, limit, offset)
        return json_response({"type": rtype, "count": len(recs), "offset": offset, "records": recs})

    async def faults_get(req: Request) -> Response:
        return json_response(sim.faults.view())

    async def set_faults(req: Request, replace: bool) -> Response:
        body = await read_json(req) or {}
        if not isinstance(body, dict):
            return json_response({"error": "expected a JSON object"}, 400)
        try:
            sim.faults.update(body, replace=replace)
        except ValidationError as e:
            return json_response({"error": "invalid fault config", "details": json.loads(e.json())}, 400)
        if body.get("expire_tokens"):
            sim.expire_tokens()
        return json_response(sim.faults.view())

    async def faults_set(req: Request) -> Response:
        return await set_faults(req, replace=False)

    async def faults_replace(req: Request) -> Response:
        return await set_faults(req, replace=True)

    async def faults_clear(req: Request) -> Response:
        sim.faults.update({}, replace=True)
        return json_response(sim.faults.view())

    async def seed_info(req: Request) -> Response:
        raw = sim.store.get_meta("seed_info")
        return json_response(json.loads(raw) if raw else {"seed": "none"})

    async def webhooks_get(req: Request) -> Response:
        return json_response(sim.outbox.view())

    async def webhooks_set(req: Request) -> Response:
        body = await read_json(req) or {}
        if "url" in body:
            sim.outbox.url = body["url"] or None
        if body.get("secret"):
            sim.outbox.secret = str(body["secret"])
        return json_response({"url": sim.outbox.url})

    async def webhooks_flush(req: Request) -> Response:
        return json_response(await sim.outbox.deliver_due(force=True))

    async def tokens_expire(req: Request) -> Response:
        sim.expire_tokens()
        return json_response({"expired": True})

    r = sim.route
    return [
        r("/health", health, "GET"),
        r("/counts", counts, "GET"),
        r("/duplicates", duplicates, "GET"),
        r("/reset", reset, "POST"),
        r("/records/{rtype}", records, "GET"),
        r("/faults", faults_get, "GET"),
        r("/faults", faults_set, "POST"),
        r("/faults", faults_replace, "PUT"),
        r("/faults", faults_clear, "DELETE"),
        r("/seed-info", seed_info, "GET"),
        r("/webhooks", webhooks_get, "GET"),
        r("/webhooks", webhooks_set, "POST"),
        r("/webhooks/flush", webhooks_flush, "POST"),
        r("/tokens/expire", tokens_expire, "POST"),
    ]
