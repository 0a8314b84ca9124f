"""Concurrent requests through one ClientCredentialsAuth share one token fetch, and one
refresh when the server ends the session: token endpoints are throttled harder than the
APIs behind them, and a worker starts 16 requests at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from connectors.errors import AuthenticationError
from connectors.http import ClientCredentials, ClientCredentialsAuth

TOKEN_URL = "https://login.example.test/oauth2/token"
CREDENTIALS = ClientCredentials(token_url=TOKEN_URL, client_id="d2r", client_secret="s3cret")


@dataclass
class Vendor:
    """A token endpoint that answers slowly (so requests pile up behind it) and an API that
    accepts only the latest token."""

    token_calls: int = 0
    refuse_credentials: bool = False
    current: str = ""
    api_calls: list[str] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_calls += 1
            await asyncio.sleep(0.05)
            if self.refuse_credentials:
                return httpx.Response(400, json={"error": "invalid_client"})
            self.current = f"t{self.token_calls}"
            return httpx.Response(200, json={"access_token": self.current, "expires_in": 3600})
        sent = request.headers.get("Authorization", "")
        self.api_calls.append(sent)
        if sent != f"Bearer {self.current}":
            return httpx.Response(401, json={"error": "INVALID_SESSION_ID"})
        return httpx.Response(200, json={"ok": True})


def client(vendor: Vendor, auth: ClientCredentialsAuth[ClientCredentials]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.MockTransport(vendor.handle), auth=auth, base_url="https://api.example.test"
    )


async def test_sixteen_requests_at_start_fetch_one_token() -> None:
    vendor = Vendor()
    auth = ClientCredentialsAuth(CREDENTIALS, system="test")
    async with client(vendor, auth) as http:
        responses = await asyncio.gather(*(http.get(f"/records/{i}") for i in range(16)))
    assert [r.status_code for r in responses] == [200] * 16
    assert vendor.token_calls == 1
    assert set(vendor.api_calls) == {"Bearer t1"}


async def test_a_session_ended_early_is_refreshed_once_for_all_requests_in_flight() -> None:
    vendor = Vendor()
    auth = ClientCredentialsAuth(CREDENTIALS, system="test")
    async with client(vendor, auth) as http:
        assert (await http.get("/records/0")).status_code == 200
        vendor.current = "revoked"  # the vendor rotates the session: every token in hand is refused
        responses = await asyncio.gather(*(http.get(f"/records/{i}") for i in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert vendor.token_calls == 2  # the first token and one refresh, not one per request
    assert vendor.api_calls.count("Bearer t2") == 8


async def test_refused_credentials_fail_every_waiting_request_without_a_token() -> None:
    vendor = Vendor(refuse_credentials=True)
    auth = ClientCredentialsAuth(CREDENTIALS, system="test")
    async with client(vendor, auth) as http:
        results = await asyncio.gather(*(http.get(f"/records/{i}") for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert vendor.api_calls == []  # nothing was sent without a token
    # each waiting request tries once in turn, after the one before it was refused
    assert vendor.token_calls == 4


def test_a_sync_client_still_fetches_and_attaches_the_token() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if str(request.url) == TOKEN_URL:
            return httpx.Response(200, json={"access_token": "sync", "expires_in": 3600})
        assert request.headers["Authorization"] == "Bearer sync"
        return httpx.Response(200)

    auth = ClientCredentialsAuth(CREDENTIALS, system="test")
    with httpx.Client(transport=httpx.MockTransport(handle), auth=auth) as http:
        assert http.get("https://api.example.test/a").status_code == 200
        assert http.get("https://api.example.test/b").status_code == 200
    assert calls.count(TOKEN_URL) == 1
