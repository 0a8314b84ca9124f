"""NetSuite SuiteTalk REST web services client.

Speaks: OAuth 2.0 client credentials with a certificate-signed JWT client assertion (or
token-based authentication, OAuth 1.0a with HMAC-SHA256, as an option),
`/services/rest/record/v1/<type>` (create -> 204 + Location, `PUT .../eid:<externalId>`
upsert, PATCH, transform), SuiteQL with limit/offset/`hasMore`, and RFC 7807 errors with
`o:errorDetails`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from connectors.errors import (
    ConnectorError,
    DuplicateError,
    NotFoundError,
    PeriodLockedError,
    VendorValidationError,
)
from connectors.http import (
    ClientCredentialsAuth,
    JwtClientAssertion,
    TokenBasedAuth,
    make_client,
    send,
    transient_error,
)
from connectors.netsuite.dates import DEFAULT_DATE_FORMAT, parse_date

SYSTEM = "netsuite"
_LOCKED_CODES = {"PERIOD_LOCKED", "PERIOD_CLOSED", "ACCOUNTING_PERIOD_LOCKED"}


@dataclass(frozen=True)
class TokenBasedAuthConfig:
    """Token-based authentication (OAuth 1.0a), NetSuite's other machine login: the
    integration record's consumer key/secret and an access token of the integration role."""

    account_id: str  # the realm, e.g. 1234567_SB1
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str

    def __repr__(self) -> str:
        return f"TokenBasedAuthConfig(account_id={self.account_id!r})"


@dataclass(frozen=True)
class NetSuiteConfig:
    """OAuth 2.0 client credentials (M2M): `client_id` is the integration record's client
    id, `certificate_id` and `private_key` the certificate mapped to it (NetSuite signs
    nothing with a client secret here)."""

    base_url: str
    client_id: str
    certificate_id: str
    private_key: str  # PEM
    instance: str = "default"
    timeout: float = 30.0
    algorithm: str = "PS256"
    date_format: str = DEFAULT_DATE_FORMAT  # the account's date format, in which SuiteQL returns dates
    tba: TokenBasedAuthConfig | None = None  # set: sign every request (TBA) instead of OAuth 2.0

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"NetSuiteConfig(base_url={self.base_url!r}, client_id={self.client_id!r}, instance={self.instance!r})"


def error_from_response(response: httpx.Response) -> ConnectorError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    details = body.get("o:errorDetails") or [{}] if isinstance(body, dict) else [{}]
    first = details[0] if details else {}
    code = first.get("o:errorCode")
    message = (
        first.get("detail")
        or (body.get("title") if isinstance(body, dict) else None)
        or response.text[:300]
        or response.reason_phrase
    )
    transient = transient_error(response, SYSTEM, message, code)
    if transient:
        return transient
    kw: dict[str, Any] = {"system": SYSTEM, "status": response.status_code, "vendor_code": code, "details": body}
    if code in _LOCKED_CODES:
        return PeriodLockedError(message, **kw)
    if response.status_code == 404 or code == "NONEXISTENT_ID":
        return NotFoundError(message, **kw)
    if code in {"DUPLICATE_EXTERNAL_ID", "IDEMPOTENCY_ERROR", "UNIQUE_CUST_ID_REQD"}:
        return DuplicateError(message, **kw)
    return VendorValidationError(message, **kw)


def _replace(body: dict[str, Any]) -> dict[str, str]:
    """NetSuite adds the lines of a sublist in a PATCH or upsert to the ones already there
    unless `?replace=<sublist>` names it ("Updating a Sublist"). d2r always writes a
    sublist whole, so every sublist in a body is named: a retried write is one state."""
    names = [k for k, v in body.items() if isinstance(v, dict) and isinstance(v.get("items"), list)]
    return {"replace": ",".join(names)} if names else {}


def _id_from_location(response: httpx.Response) -> str:
    location = response.headers.get("Location", "")
    return location.rstrip("/").rsplit("/", 1)[-1]


class NetSuiteClient:
    def __init__(self, config: NetSuiteConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.auth: ClientCredentialsAuth[JwtClientAssertion] | TokenBasedAuth
        if config.tba is not None:
            tba = config.tba
            self.auth = TokenBasedAuth(
                tba.consumer_key, tba.consumer_secret, tba.token_id, tba.token_secret, realm=tba.account_id
            )
        else:
            self.auth = ClientCredentialsAuth(
                JwtClientAssertion(
                    f"{config.base_url.rstrip('/')}/services/rest/auth/oauth2/v1/token",
                    config.client_id,
                    config.certificate_id,
                    config.private_key,
                    algorithm=config.algorithm,
                ),
                system=SYSTEM,
            )
        self._http = make_client(config.base_url, self.auth, timeout=config.timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await send(self._http, SYSTEM, method, path, **kwargs)
        if response.status_code >= 300:
            raise error_from_response(response)
        return response

    @staticmethod
    def _record(record_type: str, key: str = "") -> str:
        return f"/services/rest/record/v1/{record_type}" + (f"/{key}" if key else "")

    async def get(self, record_type: str, record_id: str) -> dict[str, Any]:
        response = await self._call(
            "GET", self._record(record_type, quote(record_id)), params={"expandSubResources": "true"}
        )
        body: dict[str, Any] = response.json()
        return body

    async def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        try:
            response = await self._call(
                "GET",
                self._record(record_type, "eid:" + quote(external_id, safe="")),
                params={"expandSubResources": "true"},
            )
        except NotFoundError:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def create(self, record_type: str, body: dict[str, Any]) -> str:
        return _id_from_location(await self._call("POST", self._record(record_type), json=body))

    async def upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        """`PUT .../eid:<externalId>`: creates or updates; the same call twice is one record
        (its sublists are replaced, see `_replace`)."""
        path = self._record(record_type, "eid:" + quote(external_id, safe=""))
        response = await self._call("PUT", path, json=body, params=_replace(body))
        record_id = _id_from_location(response)
        if record_id and not record_id.startswith("eid:"):
            return record_id
        record = await self.get_by_external_id(record_type, external_id)
        if record is None:
            raise NotFoundError(f"{record_type} {external_id} vanished after upsert", system=SYSTEM)
        return str(record["id"])

    async def patch(self, record_type: str, record_id: str, body: dict[str, Any]) -> None:
        await self._call("PATCH", self._record(record_type, quote(record_id)), json=body, params=_replace(body))

    async def delete(self, record_type: str, record_id: str) -> None:
        await self._call("DELETE", self._record(record_type, quote(record_id)))

    async def transform(self, record_type: str, record_id: str, target: str, body: dict[str, Any] | None = None) -> str:
        response = await self._call(
            "POST", self._record(record_type, f"{quote(record_id)}/!transform/{target}"), json=body or {}
        )
        return _id_from_location(response)

    def date(self, value: object) -> date:
        """A date of a SuiteQL row, in the account's date format."""
        return parse_date(str(value), self.config.date_format)

    async def subsidiary_id(self, legal_entity: str) -> str | None:
        """The internal id of the subsidiary whose externalId is the legal entity's code."""
        code = legal_entity.replace("'", "''")
        async for row in self.suiteql(f"SELECT id FROM subsidiary WHERE externalid = '{code}'", page_size=1):
            return str(row["id"])
        return None

    async def suiteql(self, query: str, page_size: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every row of a SuiteQL query, paging by offset until `hasMore` is false.

        Order by a unique key in `query`, or pages may repeat or miss rows.
        """
        offset = 0
        while True:
            response = await self._call(
                "POST",
                "/services/rest/query/v1/suiteql",
                params={"limit": page_size, "offset": offset},
                headers={"Prefer": "transient"},
                json={"q": query},
            )
            page = response.json()
            items = page.get("items", [])
            for row in items:
                yield row
            if not page.get("hasMore") or not items:
                return
            offset += len(items)
