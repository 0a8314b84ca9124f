"""Dynamics 365 Finance OData client.

Speaks: Microsoft identity platform client credentials (`scope=<environment>/.default`),
OData v4 data entities under `/data/` with composite keys and `cross-company=true`,
server-driven paging (`@odata.nextLink`), `$batch` change sets, ETags, and OData errors
whose X++ infolog sits in `innererror.message`. Decimals travel as strings both ways
(`IEEE754Compatible=true`), so money stays exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from connectors.dynamics import batch
from connectors.errors import (
    ConnectorError,
    NotFoundError,
    PeriodLockedError,
    RetryableError,
    VendorValidationError,
)
from connectors.http import ClientCredentials, ClientCredentialsAuth, make_client, send, transient_error

SYSTEM = "dynamics"
JSON = "application/json;IEEE754Compatible=true"
ACTIONS = "Microsoft.Dynamics.DataEntities"
_LOCKED = re.compile(r"ledger period .* is not open|period .* (?:is )?(?:on hold|closed)", re.I)


class AlreadyExistsError(VendorValidationError):
    """A create met a record with the same key: for an idempotent create, read it instead."""

    type_name = "AlreadyExists"


class ConcurrencyError(RetryableError):
    """412: the record changed since it was read (its ETag no longer matches)."""

    type_name = "ConcurrencyConflict"


@dataclass(frozen=True)
class DynamicsConfig:
    base_url: str  # the environment URL, e.g. https://contoso.operations.dynamics.com
    tenant: str
    client_id: str
    client_secret: str
    instance: str = "dynamics"
    token_url: str | None = None  # default: login.microsoftonline.com shape on base_url's host
    resource: str | None = None  # default: base_url
    timeout: float = 30.0


class ScopedCredentialsAuth(ClientCredentialsAuth):
    """Client credentials with the `scope=<resource>/.default` Entra ID requires."""

    def __init__(self, credentials: ClientCredentials, scope: str) -> None:
        super().__init__(credentials, system=SYSTEM)
        self._scope = scope

    def _token_request(self) -> httpx.Request:
        c = self._credentials
        form = {"grant_type": "client_credentials", "client_id": c.client_id, "client_secret": c.client_secret}
        return httpx.Request("POST", c.token_url, data={**form, "scope": self._scope})


def error_from(status: int, headers: httpx.Headers | dict[str, str], text: str) -> ConnectorError:
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    inner = (error.get("innererror") or {}).get("message") if isinstance(error, dict) else None
    message = inner or (error.get("message") if isinstance(error, dict) else None) or text[:300] or f"HTTP {status}"
    code = (error.get("code") if isinstance(error, dict) else None) or None
    response = httpx.Response(status, headers=headers)
    transient = transient_error(response, SYSTEM, message, code)
    if transient:
        return transient
    kw: dict[str, Any] = {"system": SYSTEM, "status": status, "vendor_code": code, "details": body}
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 412:
        return ConcurrencyError(message, **kw)
    if "record already exists" in message:
        return AlreadyExistsError(message, **kw)
    if _LOCKED.search(message):
        return PeriodLockedError(message, **{**kw, "vendor_code": code or "PERIOD_NOT_OPEN"})
    return VendorValidationError(message, **kw)


def key(**values: Any) -> str:
    """A composite OData key: `(dataAreaId='uk01',CustomerAccount='C1')`."""
    parts = []
    for name, value in values.items():
        if isinstance(value, int | Decimal):
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}='" + str(value).replace("'", "''") + "'")
    return "(" + ",".join(parts) + ")"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DynamicsClient:
    def __init__(self, config: DynamicsConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        base = config.base_url.rstrip("/")
        resource = (config.resource or base).rstrip("/")
        token_url = config.token_url or f"{base}/{config.tenant}/oauth2/v2.0/token"
        self.auth = ScopedCredentialsAuth(
            ClientCredentials(token_url, config.client_id, config.client_secret), f"{resource}/.default"
        )
        self._http = make_client(base, self.auth, timeout=config.timeout, transport=transport)
        self._http.headers["Accept"] = JSON
        self.calls = 0  # requests sent (a batch counts once), for the connector figures

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls += 1
        headers = {**kwargs.pop("headers", {})}
        if "json" in kwargs:
            headers["Content-Type"] = JSON
            kwargs["content"] = json.dumps(kwargs.pop("json"))
        response = await send(self._http, SYSTEM, method, path, headers=headers, **kwargs)
        if response.status_code >= 300:
            raise error_from(response.status_code, response.headers, response.text)
        return response

    # -- reads -------------------------------------------------------------------------------
    async def get(self, entity_set: str, record_key: str, select: Sequence[str] = ()) -> dict[str, Any] | None:
        params = {"$select": ",".join(select)} if select else None
        try:
            response = await self._call("GET", f"/data/{entity_set}{quote(record_key, safe=_SAFE)}", params=params)
        except NotFoundError:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def query(
        self,
        entity_set: str,
        filter: str | None = None,
        *,
        select: Sequence[str] = (),
        orderby: str | None = None,
        cross_company: bool = True,
        top: int | None = None,
        skip: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every row, following `@odata.nextLink`. Cross-company by default: d2r names the
        company in its filters rather than trusting the API user's default company."""
        params: dict[str, str] = {}
        if cross_company:
            params["cross-company"] = "true"
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(select)
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        if skip:
            params["$skip"] = str(skip)
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        url: str | None = f"/data/{entity_set}"
        first = True
        while url:
            response = await self._call("GET", url, params=params if first else None, headers=headers)
            first = False
            page = response.json()
            for row in page.get("value", []):
                yield row
            url = page.get("@odata.nextLink")

    async def first(self, entity_set: str, filter: str, select: Sequence[str] = ()) -> dict[str, Any] | None:
        async for row in self.query(entity_set, filter, select=select, top=1):
            return row
        return None

    async def all(self, entity_set: str, filter: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        return [row async for row in self.query(entity_set, filter, **kw)]

    # -- writes ------------------------------------------------------------------------------
    async def create(self, entity_set: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._call("POST", f"/data/{entity_set}", json=body)
        created: dict[str, Any] = response.json()
        return created

    async def patch(self, entity_set: str, record_key: str, body: dict[str, Any], etag: str | None = None) -> None:
        headers = {"If-Match": etag} if etag else {}
        await self._call("PATCH", f"/data/{entity_set}{quote(record_key, safe=_SAFE)}", json=body, headers=headers)

    async def delete(self, entity_set: str, record_key: str) -> None:
        await self._call("DELETE", f"/data/{entity_set}{quote(record_key, safe=_SAFE)}")

    async def send_batch(
        self, items: list[list[batch.Request] | batch.Request]
    ) -> list[list[batch.Response] | batch.Response]:
        """One `$batch`: a list is a change set (all or nothing), a Request stands alone.
        Each item answers on its own; a failed change set answers with one Response."""
        body, content_type = batch.build(items)
        response = await self._call("POST", "/data/$batch", content=body, headers={"Content-Type": content_type})
        return batch.parse(response.content, response.headers.get("content-type", ""))

    async def changeset_then_get(
        self, requests: Sequence[batch.Request], entity_set: str, record_key: str
    ) -> dict[str, Any] | None:
        """A change set, then (in the same `$batch`, one round trip) a read of the record it
        wrote. Raises the change set's error; None if the record is not there."""
        written, read = await self.send_batch([list(requests), batch.Request("GET", f"/data/{entity_set}{record_key}")])
        if isinstance(written, batch.Response):
            raise error_from(written.status, written.headers, written.body.decode("utf-8", "replace"))
        if isinstance(read, batch.Response) and read.status == 200:
            found: dict[str, Any] = read.json()
            return found
        return None

    async def changeset(self, requests: Sequence[batch.Request]) -> list[batch.Response]:
        """One `$batch` holding one change set: all of it is written, or none of it.
        A refused change set raises the error of the request that failed."""
        [result] = await self.send_batch([list(requests)])
        if isinstance(result, batch.Response):  # a failed change set answers with one response
            raise error_from(result.status, result.headers, result.body.decode("utf-8", "replace"))
        return result


_SAFE = "()=',"
