"""Kantata OX REST client on the shared httpx base.

Speaks: OAuth2 bearer tokens, `/api/v1/<type>` JSON with the `results` + keyed-by-id
envelope, `page` / `per_page` paging until `count`, `include=` side-loading, and
`{"errors": [{"type", "message"}]}` errors. Kantata has no idempotency keys and no
upsert: `find_by_reference` is what makes d2r's creates idempotent (connectors/kantata/psa.py).

A 429 carries no `Retry-After`, and means nothing was done, so the client backs off and
retries it a few times itself (jittered exponential, bounded) before handing the
activity a `RateLimitedError` for Temporal's own backoff. Nothing else is retried here.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from connectors.errors import ConnectorError, DuplicateError, NotFoundError, RateLimitedError, VendorValidationError
from connectors.http import ClientCredentials, ClientCredentialsAuth, make_client, send, transient_error
from domain.money import Money, minor_unit

SYSTEM = "kantata"
API = "/api/v1"
PER_PAGE = 200  # Kantata's maximum page size
ID_CHUNK = 100  # ids per comma-separated filter, to keep URLs short
REFERENCE = "d2r reference"


@dataclass(frozen=True)
class KantataConfig:
    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 30.0
    throttle_retries: int = 4  # in-client retries of a 429 before the activity sees it
    throttle_base_delay: float = 0.25  # seconds; doubles per retry, with full jitter


@dataclass
class Listing:
    """Records in `results` order, plus every side-loaded record by type and id."""

    records: list[dict[str, Any]] = field(default_factory=list)
    included: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.records)

    def related(self, key: str, record_id: Any) -> dict[str, Any] | None:
        return self.included.get(key, {}).get(str(record_id)) if record_id else None


def error_from_response(response: httpx.Response) -> ConnectorError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = str(first.get("message") or response.text[:300] or response.reason_phrase)
    code = first.get("type")
    transient = transient_error(response, SYSTEM, message, code)
    if transient:
        return transient
    kw: dict[str, Any] = {"system": SYSTEM, "status": response.status_code, "vendor_code": code, "details": body}
    if response.status_code == 404:
        return NotFoundError(message, **kw)
    return VendorValidationError(message, **kw)


def to_cents(money: Money) -> int:
    """Kantata's integer minor units; refuses an amount that is not whole in them."""
    scaled = money.amount.scaleb(minor_unit(money.currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{money} is not a whole number of minor units")
    return int(scaled)


def round_cents(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_unit(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_cents(cents: int | None, currency: str) -> Money:
    return Money(amount=Decimal(int(cents or 0)).scaleb(-minor_unit(currency)), currency=currency)


def one(body: dict[str, Any]) -> dict[str, Any]:
    ref = body["results"][0]
    record: dict[str, Any] = body[ref["key"]][ref["id"]]
    return record


class KantataClient:
    def __init__(self, config: KantataConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.auth = ClientCredentialsAuth(
            ClientCredentials(f"{config.base_url.rstrip('/')}/oauth/token", config.client_id, config.client_secret),
            system=SYSTEM,
        )
        self._http = make_client(config.base_url, self.auth, timeout=config.timeout, transport=transport)
        self._fields: dict[tuple[str, str], str] | None = None
        self._rng = random.Random()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await send(self._http, SYSTEM, method, path, **kwargs)
            except RateLimitedError as throttled:  # the token endpoint said 429
                if attempt >= self.config.throttle_retries:
                    throttled.retry_after = throttled.retry_after or self._backoff(attempt + 1)
                    raise
            else:
                if response.status_code != 429 or attempt >= self.config.throttle_retries:
                    break
            # refused, not processed: safe to send again, even a POST
            await asyncio.sleep(self._rng.uniform(0, self._backoff(attempt)))
            attempt += 1
        if response.status_code >= 300:
            error = error_from_response(response)
            if isinstance(error, RateLimitedError) and error.retry_after is None:
                error.retry_after = self._backoff(attempt + 1)  # Kantata says nothing: our next step
            raise error
        return response

    def _backoff(self, attempt: int) -> float:
        return float(self.config.throttle_base_delay * 2**attempt)

    # ---- reads ---------------------------------------------------------------------
    async def listing(
        self, key: str, params: dict[str, Any] | None = None, include: str = "", limit: int | None = None
    ) -> Listing:
        """Every page of a listing (`page` / `per_page` until `count` is reached), or the
        first `limit` records."""
        out = Listing()
        query: dict[str, Any] = {"per_page": PER_PAGE, **(params or {})}
        if include:
            query["include"] = include
        page = 1
        while True:
            body = (await self._call("GET", f"{API}/{key}", params={**query, "page": page})).json()
            for ref in body.get("results", []):
                out.records.append(body[ref["key"]][ref["id"]])
            for k, v in body.items():
                if isinstance(v, dict) and k not in ("meta",):
                    out.included.setdefault(k, {}).update(v)
            done = len(out.records) >= limit if limit is not None else False
            if done or page * int(query["per_page"]) >= int(body.get("count", 0)) or not body.get("results"):
                return out
            page += 1

    async def list_ids(
        self, key: str, id_filter: str, ids: list[str], params: dict[str, Any] | None = None, include: str = ""
    ) -> Listing:
        """A listing filtered on many ids, `ID_CHUNK` at a time."""
        out = Listing()
        unique = sorted(set(ids), key=_id_order)
        for at in range(0, len(unique), ID_CHUNK):
            part = await self.listing(key, {**(params or {}), id_filter: ",".join(unique[at : at + ID_CHUNK])}, include)
            out.records.extend(part.records)
            for k, v in part.included.items():
                out.included.setdefault(k, {}).update(v)
        return out

    async def get(self, key: str, record_id: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        try:
            return one((await self._call("GET", f"{API}/{key}/{record_id}", params=params)).json())
        except NotFoundError:
            return None

    # ---- writes (no idempotency keys: callers look up their reference first) ---------
    async def create(self, key: str, singular: str, body: dict[str, Any]) -> dict[str, Any]:
        return one((await self._call("POST", f"{API}/{key}", json={singular: body})).json())

    async def update(self, key: str, singular: str, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return one((await self._call("PUT", f"{API}/{key}/{record_id}", json={singular: body})).json())

    async def delete(self, key: str, record_id: str) -> bool:
        try:
            await self._call("DELETE", f"{API}/{key}/{record_id}")
        except NotFoundError:
            return False
        return True

    # ---- custom fields ---------------------------------------------------------------
    async def field_id(self, name: str, subject_type: str) -> str:
        if self._fields is None:
            rows = (await self.listing("custom_fields")).records
            self._fields = {(r["name"], r["subject_type"]): str(r["id"]) for r in rows}
        found = self._fields.get((name, subject_type))
        if found is None:
            raise VendorValidationError(
                f"custom field {name!r} on {subject_type} is not set up in Kantata",
                system=SYSTEM,
                vendor_code="MISSING_CUSTOM_FIELD",
            )
        return found

    async def custom_value(self, name: str, subject_type: str, value: str) -> dict[str, Any]:
        return {"custom_field_id": await self.field_id(name, subject_type), "value": value}

    async def find_by_value(self, name: str, subject_type: str, value: str) -> list[str]:
        """Ids of the subjects whose custom field `name` holds `value`, lowest first."""
        rows = await self.listing(
            "custom_field_values",
            {"subject_type": subject_type, "custom_field_id": await self.field_id(name, subject_type), "value": value},
        )
        return sorted({str(r["subject_id"]) for r in rows.records}, key=_id_order)

    async def find_by_reference(self, subject_type: str, reference: str) -> str | None:
        """The one record carrying d2r's reference, if any (several: a person must look)."""
        ids = await self.find_by_value(REFERENCE, subject_type, reference)
        if len(ids) > 1:
            raise DuplicateError(
                f"{len(ids)} {subject_type} records carry the d2r reference {reference!r}: {', '.join(ids)}",
                system=SYSTEM,
                vendor_code="MULTIPLE_MATCHES",
            )
        return ids[0] if ids else None

    async def values_of(self, name: str, subject_type: str, subject_ids: list[str]) -> dict[str, dict[str, Any]]:
        """subject id -> its custom field value record for `name`."""
        if not subject_ids:
            return {}
        rows = await self.list_ids(
            "custom_field_values",
            "subject_id",
            subject_ids,
            {"subject_type": subject_type, "custom_field_id": await self.field_id(name, subject_type)},
        )
        return {str(r["subject_id"]): r for r in rows.records}

    async def set_values(self, name: str, subject_type: str, values: dict[str, str]) -> int:
        """Write one custom field on many subjects (absolute values, so a retry is harmless):
        new values in bulk creates of up to 100, changed ones one update each."""
        existing = await self.values_of(name, subject_type, list(values))
        field_id = await self.field_id(name, subject_type)
        new = [
            {"subject_type": subject_type, "subject_id": sid, "custom_field_id": field_id, "value": value}
            for sid, value in sorted(values.items())
            if sid not in existing
        ]
        for at in range(0, len(new), ID_CHUNK):
            await self._call(
                "POST", f"{API}/custom_field_values", json={"custom_field_values": new[at : at + ID_CHUNK]}
            )
        changed = 0
        for sid, value in sorted(values.items()):
            row = existing.get(sid)
            if row is not None and row.get("value") != value:
                await self.update("custom_field_values", "custom_field_value", str(row["id"]), {"value": value})
                changed += 1
        return len(new) + changed


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)
