"""Connector parsing of response bodies shaped like the vendors' documentation examples,
served by an httpx.MockTransport (a real HTTP exchange, no patched internals)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from activities.errors import to_application_error
from connectors.errors import (
    DuplicateError,
    LimitExceededError,
    NotFoundError,
    PeriodLockedError,
    RateLimitedError,
    UnavailableError,
    VendorValidationError,
)
from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.vendor_auth import private_key_pem

Handler = Callable[[httpx.Request], httpx.Response]
TOKEN = {
    "access_token": "00Dxx!AQ0AQ",
    "instance_url": "https://example.my.salesforce.com",
    "id": "https://login.salesforce.com/id/00Dxx/005xx",
    "token_type": "Bearer",
    "issued_at": "1278448101416",
}


def salesforce(handler: Handler) -> SalesforceClient:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            return httpx.Response(200, json=TOKEN)
        return handler(request)

    return SalesforceClient(
        SalesforceConfig(base_url="https://sf.test", client_id="c", client_secret="s"),
        transport=httpx.MockTransport(route),
    )


def netsuite(handler: Handler) -> NetSuiteClient:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v1/token"):
            return httpx.Response(200, json={"access_token": "eyJ", "token_type": "bearer", "expires_in": 3600})
        return handler(request)

    return NetSuiteClient(
        NetSuiteConfig(base_url="https://ns.test", client_id="c", certificate_id="k", private_key=private_key_pem()),
        transport=httpx.MockTransport(route),
    )


async def test_soql_follows_next_records_url() -> None:
    pages = {
        "/services/data/v61.0/query": {
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v61.0/query/01gD0000002HU6KIAW-2000",
            "records": [
                {"attributes": {"type": "Account", "url": "/x/1"}, "Name": "A"},
                {"attributes": {"type": "Account", "url": "/x/2"}, "Name": "B"},
            ],
        },
        "/services/data/v61.0/query/01gD0000002HU6KIAW-2000": {
            "totalSize": 3,
            "done": True,
            "records": [{"attributes": {"type": "Account"}, "Name": "C"}],
        },
    }
    sf = salesforce(lambda r: httpx.Response(200, json=pages[r.url.path]))
    assert [r["Name"] for r in await sf.query_all("SELECT Name FROM Account")] == ["A", "B", "C"]


async def test_expired_session_refreshes_the_token_once() -> None:
    seen: list[str] = []
    tokens = iter(["first", "second"])

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            return httpx.Response(200, json={**TOKEN, "access_token": next(tokens)})
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer first":
            expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            return httpx.Response(401, json=expired)
        return httpx.Response(200, json={"Id": "001", "Name": "Acme"})

    sf = SalesforceClient(
        SalesforceConfig(base_url="https://sf.test", client_id="c", client_secret="s"),
        transport=httpx.MockTransport(route),
    )
    assert (await sf.get("Account", "001"))["Name"] == "Acme"
    assert seen == ["Bearer first", "Bearer second"]


async def test_upsert_created_and_multiple_matches() -> None:
    sf = salesforce(
        lambda r: httpx.Response(201, json={"id": "a0P000000000001", "errors": [], "success": True, "created": True})
    )
    assert await sf.upsert("pse__Proj__c", "D2R_External_Id__c", "d2r:x:project", {"Name": "P"}) == (
        "a0P000000000001",
        True,
    )
    sf = salesforce(
        lambda r: httpx.Response(
            300, json=["/services/data/v61.0/sobjects/Account/001A", "/services/data/v61.0/sobjects/Account/001B"]
        )
    )
    with pytest.raises(DuplicateError):
        await sf.upsert("Account", "D2R_Customer_Key__c", "k", {"Name": "x"})


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (
            400,
            [{"message": "No such column 'Foo' on entity 'Account'", "errorCode": "INVALID_FIELD"}],
            {},
            VendorValidationError,
        ),
        (404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], {}, NotFoundError),
        (
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {},
            LimitExceededError,
        ),
        (
            503,
            [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
            {"Retry-After": "7"},
            UnavailableError,
        ),
    ],
)
async def test_salesforce_error_classification(
    status: int, body: object, headers: dict[str, str], error: type[Exception]
) -> None:
    sf = salesforce(lambda r: httpx.Response(status, json=body, headers=headers))
    with pytest.raises(error):
        await sf.get("Account", "001")


async def test_netsuite_create_reads_location_and_upsert_is_put_on_eid() -> None:
    calls: list[tuple[str, str]] = []

    def route(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.raw_path.decode()))
        return httpx.Response(204, headers={"Location": "https://ns.test/services/rest/record/v1/customer/647"})

    ns = netsuite(route)
    assert await ns.create("customer", {"companyName": "Acme"}) == "647"
    assert await ns.upsert("customer", "d2r:customer:001", {"companyName": "Acme"}) == "647"
    assert calls[1] == ("PUT", "/services/rest/record/v1/customer/eid:d2r%3Acustomer%3A001")


async def test_netsuite_error_details_and_429() -> None:
    body = {
        "type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid field value 99 for subsidiary.",
                "o:errorCode": "INVALID_CONTENT",
                "o:errorPath": "subsidiary",
            }
        ],
    }
    ns = netsuite(lambda r: httpx.Response(400, json=body))
    with pytest.raises(VendorValidationError) as caught:
        await ns.create("customer", {})
    assert caught.value.vendor_code == "INVALID_CONTENT"
    assert "subsidiary" in caught.value.message

    locked = {
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [{"detail": "The accounting period is locked.", "o:errorCode": "PERIOD_LOCKED"}],
    }
    with pytest.raises(PeriodLockedError):
        await netsuite(lambda r: httpx.Response(400, json=locked)).create("invoice", {})

    busy = netsuite(
        lambda r: httpx.Response(429, json={"title": "Too Many Requests", "status": 429}, headers={"Retry-After": "3"})
    )
    with pytest.raises(RateLimitedError) as limited:
        await busy.get("customer", "1")
    app_error = to_application_error(limited.value)
    assert app_error.non_retryable is False
    assert app_error.next_retry_delay == timedelta(seconds=3)
    assert app_error.type == "RateLimited"


async def test_suiteql_pages_until_has_more_is_false() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        assert json.loads(request.content)["q"].startswith("SELECT")
        rows = [{"id": str(i)} for i in range(offset, min(offset + 2, 5))]
        return httpx.Response(
            200,
            json={
                "links": [],
                "count": len(rows),
                "hasMore": offset + 2 < 5,
                "items": rows,
                "offset": offset,
                "totalResults": 5,
            },
        )

    ns = netsuite(route)
    rows = [row async for row in ns.suiteql("SELECT id FROM customer ORDER BY id", page_size=2)]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]


async def test_non_retryable_errors_become_non_retryable_application_errors() -> None:
    error = DuplicateError("two matches", system="salesforce", status=300)
    app_error = to_application_error(error)
    assert app_error.non_retryable is True
    assert app_error.type == "MultipleMatches"
