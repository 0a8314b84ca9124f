"""Salesforce REST API client (also the transport for Certinia PSA objects).

Speaks: OAuth 2.0 token (client credentials, or the JWT bearer flow), `/services/data/vNN.0/sobjects/...` CRUD,
external-id upsert, SOQL `query` / `queryAll` with `nextRecordsUrl`, sObject Collections, the replication
resources (`sobjects/<Object>/updated` and `/deleted`), Salesforce error arrays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors.errors import (
    ConnectorError,
    DuplicateError,
    LimitExceededError,
    NotFoundError,
    VendorValidationError,
)
from connectors.http import ClientCredentials, ClientCredentialsAuth, JwtBearerGrant, make_client, send, transient_error

SYSTEM = "salesforce"
COLLECTION_LIMIT = 200  # records per sObject Collections call


@dataclass(frozen=True)
class SalesforceConfig:
    """Client credentials (`client_secret`), or the JWT bearer flow when `username` and
    `private_key` (the connected app's certificate key, PEM) are set."""

    base_url: str
    client_id: str
    client_secret: str = ""
    api_version: str = "v61.0"
    timeout: float = 30.0
    username: str | None = None
    private_key: str | None = None
    audience: str = "https://login.salesforce.com"

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"SalesforceConfig(base_url={self.base_url!r}, client_id={self.client_id!r}, username={self.username!r})"

    def credentials(self) -> ClientCredentials | JwtBearerGrant:
        token_url = f"{self.base_url.rstrip('/')}/services/oauth2/token"
        if self.username and self.private_key:
            return JwtBearerGrant(token_url, self.client_id, self.username, self.private_key, self.audience)
        return ClientCredentials(token_url, self.client_id, self.client_secret)


def _session_expired(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    try:
        return any(e.get("errorCode") == "INVALID_SESSION_ID" for e in response.json())
    except (ValueError, AttributeError):
        return True


def error_from_response(response: httpx.Response) -> ConnectorError:
    """Map a Salesforce error array (`[{message, errorCode, fields}]`) to a typed error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code = first.get("errorCode")
    message = first.get("message") or response.text[:300] or response.reason_phrase
    transient = transient_error(response, SYSTEM, message, code)
    if transient:
        return transient
    kw: dict[str, Any] = {"system": SYSTEM, "status": response.status_code, "vendor_code": code, "details": body}
    if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return LimitExceededError(message, retry_after=300.0, **kw)
    if response.status_code == 404:
        return NotFoundError(message, **kw)
    if response.status_code == 300 or code in {"DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID"}:
        return DuplicateError(message or "several records match the external id", **kw)
    return VendorValidationError(message, **kw)


class SalesforceClient:
    def __init__(self, config: SalesforceConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self.auth = ClientCredentialsAuth(
            config.credentials(),
            system=SYSTEM,
            is_expired_response=_session_expired,
        )
        self._http = make_client(config.base_url, self.auth, timeout=config.timeout, transport=transport)
        self._data = f"/services/data/{config.api_version}"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await send(self._http, SYSTEM, method, path, **kwargs)
        if response.status_code >= 300:
            raise error_from_response(response)
        return response

    async def query(self, soql: str, include_deleted: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Every record of a SOQL query, following `nextRecordsUrl` page by page;
        `include_deleted` asks `queryAll`, which also returns the Recycle Bin's records
        (`IsDeleted = true`)."""
        resource = "queryAll" if include_deleted else "query"
        response = await self._call("GET", f"{self._data}/{resource}", params={"q": soql})
        while True:
            page = response.json()
            for record in page.get("records", []):
                yield record
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            response = await self._call("GET", page["nextRecordsUrl"])

    async def query_all(self, soql: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        return [record async for record in self.query(soql, include_deleted)]

    async def updated(self, sobject: str, start: datetime, end: datetime) -> Updated:
        """sObject Get Updated: the ids added or changed in [start, end] (to the minute,
        the last 30 days). Start the next sweep at `latest_covered`."""
        body = await self._replication(sobject, "updated", start, end)
        return Updated(ids=[str(i) for i in body.get("ids", [])], latest_covered=sf_datetime(body["latestDateCovered"]))

    async def deleted(self, sobject: str, start: datetime, end: datetime) -> Deleted:
        """sObject Get Deleted: the ids deleted in [start, end] with their deletion time
        (the last 15 days). An `earliest_available` after `start` means the delete log was
        purged: the caller must re-read everything."""
        body = await self._replication(sobject, "deleted", start, end)
        return Deleted(
            records=[(str(r["id"]), sf_datetime(r["deletedDate"])) for r in body.get("deletedRecords", [])],
            earliest_available=sf_datetime(body["earliestDateAvailable"])
            if body.get("earliestDateAvailable")
            else None,
            latest_covered=sf_datetime(body["latestDateCovered"]),
        )

    async def _replication(self, sobject: str, kind: str, start: datetime, end: datetime) -> dict[str, Any]:
        params = {"start": _iso(start), "end": _iso(end)}
        response = await self._call("GET", f"{self._data}/sobjects/{sobject}/{kind}/", params=params)
        body: dict[str, Any] = response.json()
        return body

    async def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"{self._data}/sobjects/{sobject}/{quote(record_id)}")
        body: dict[str, Any] = response.json()
        return body

    async def create(self, sobject: str, fields: dict[str, Any]) -> str:
        response = await self._call("POST", f"{self._data}/sobjects/{sobject}", json=fields)
        return str(response.json()["id"])

    async def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        await self._call("PATCH", f"{self._data}/sobjects/{sobject}/{quote(record_id)}", json=fields)

    async def delete(self, sobject: str, record_id: str) -> bool:
        """Delete; an already-deleted record counts as done (compensations must be idempotent)."""
        try:
            await self._call("DELETE", f"{self._data}/sobjects/{sobject}/{quote(record_id)}")
        except NotFoundError:
            return False
        return True

    async def update_many(self, sobject: str, records: list[dict[str, Any]], missing_ok: bool = True) -> int:
        """Update many records (each with its `Id`) through sObject Collections
        (`PATCH /composite/sobjects`), 200 per call (one API call each). Records succeed or
        fail one by one (allOrNone false): a record deleted meanwhile is skipped when
        `missing_ok`; any other refusal raises after the chunk. Returns how many updated.
        Setting the same fields again is harmless, so a retried call is idempotent."""
        updated = 0
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = records[start : start + COLLECTION_LIMIT]
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": sobject}, "id": r["Id"], **{k: v for k, v in r.items() if k != "Id"}}
                    for r in chunk
                ],
            }
            response = await self._call("PATCH", f"{self._data}/composite/sobjects", json=body)
            failures = []
            for record, result in zip(chunk, response.json(), strict=True):
                if result.get("success"):
                    updated += 1
                    continue
                errors = result.get("errors") or [{}]
                codes = {e.get("statusCode") or e.get("errorCode") for e in errors}
                if missing_ok and codes & {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"}:
                    continue
                failures.append((record["Id"], errors))
            if failures:
                first_id, errors = failures[0]
                raise VendorValidationError(
                    f"{len(failures)} {sobject} updates refused, first {first_id}: {errors[0].get('message')}",
                    system=SYSTEM,
                    status=400,
                    vendor_code=errors[0].get("statusCode") or errors[0].get("errorCode"),
                    details=failures,
                )
        return updated

    async def upsert(
        self, sobject: str, external_field: str, external_value: str, fields: dict[str, Any]
    ) -> tuple[str, bool]:
        """Upsert by external id. Returns (record id, created)."""
        path = f"{self._data}/sobjects/{sobject}/{external_field}/{quote(external_value, safe='')}"
        response = await self._call("PATCH", path, json=fields)
        if response.status_code == 201 or (response.content and response.json().get("id")):
            body = response.json()
            return str(body["id"]), bool(body.get("created", response.status_code == 201))
        # 204: updated, and Salesforce does not echo the id: read it back by external id.
        rows = await self.query_all(f"SELECT Id FROM {sobject} WHERE {external_field} = {soql_quote(external_value)}")
        if len(rows) != 1:
            raise DuplicateError(f"{len(rows)} {sobject} records match {external_value}", system=SYSTEM)
        return str(rows[0]["Id"]), False


@dataclass(frozen=True)
class Updated:
    ids: list[str]
    latest_covered: datetime


@dataclass(frozen=True)
class Deleted:
    records: list[tuple[str, datetime]]  # (id, deleted at)
    earliest_available: datetime | None
    latest_covered: datetime


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC, as the replication resources take it (naive means UTC)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="seconds")


def sf_datetime(text: str) -> datetime:
    """A Salesforce datetime (`2026-12-01T10:00:00.000+0000`)."""
    return datetime.fromisoformat(text.replace("+0000", "+00:00").replace("Z", "+00:00"))


def soql_quote(value: str) -> str:
    """Quote a string literal for SOQL (backslash and single quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
