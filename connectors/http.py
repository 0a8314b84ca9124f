"""The shared httpx base: OAuth2 token auth with refresh (client secret, a JWT client
assertion signed with the integration's certificate key, or the JWT bearer grant),
OAuth 1.0a request signing (NetSuite token-based authentication), timeouts, spans.

Connectors never loop on retries themselves: Temporal retries the activity, with
backoff, and an error's `retry_after` becomes the next retry delay.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote_plus

import httpx
import jwt
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from connectors.endpoints import tls_verify
from connectors.errors import AuthenticationError, RateLimitedError, RetryableError, UnavailableError


@dataclass(frozen=True)
class ClientCredentials:
    """Client credentials with a secret, in the form body or (`basic`) as HTTP Basic."""

    token_url: str
    client_id: str
    client_secret: str
    basic: bool = False

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.basic:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
            headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
            return httpx.Request("POST", self.token_url, data=form, headers=headers)
        form.update(client_id=self.client_id, client_secret=self.client_secret)
        return httpx.Request("POST", self.token_url, data=form)


CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class JwtClientAssertion:
    """Client credentials where the client proves itself with a JWT signed by the private
    key of the certificate registered with the vendor (RFC 7523 §2.2; NetSuite M2M).
    A fresh assertion per token request: `jti` and `iat` differ, so none is replayed."""

    token_url: str
    client_id: str
    key_id: str  # NetSuite: the Certificate ID of the M2M mapping
    private_key: str  # PEM
    algorithm: str = "PS256"
    scope: str = "rest_webservices"
    lifetime_s: int = 300

    def __repr__(self) -> str:
        return f"JwtClientAssertion(token_url={self.token_url!r}, client_id={self.client_id!r}, kid={self.key_id!r})"

    def token_request(self) -> httpx.Request:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": now,
            "exp": now + self.lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        assertion = jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.key_id, "typ": "JWT"}
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return httpx.Request("POST", self.token_url, data=form)


@dataclass(frozen=True)
class JwtBearerGrant:
    """The OAuth 2.0 JWT bearer grant (RFC 7523 §2.1; Salesforce server-to-server): an
    RS256 assertion for a pre-authorised user, signed with the connected app's key."""

    token_url: str
    client_id: str
    username: str
    private_key: str  # PEM
    audience: str = "https://login.salesforce.com"
    lifetime_s: int = 180  # Salesforce: exp within 3 minutes

    def __repr__(self) -> str:
        return f"JwtBearerGrant(token_url={self.token_url!r}, client_id={self.client_id!r}, sub={self.username!r})"

    def token_request(self) -> httpx.Request:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": now + self.lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        return httpx.Request("POST", self.token_url, data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion})


class TokenSource(Protocol):
    def token_request(self) -> httpx.Request: ...


S = TypeVar("S", bound=TokenSource)


@dataclass
class Token:
    access_token: str
    expires_at: float | None
    instance_url: str | None = None


class ClientCredentialsAuth(httpx.Auth, Generic[S]):
    """Fetches a token, attaches it, and refreshes once when the server says it expired.

    `is_expired_response` lets each vendor say how it reports an expired session
    (Salesforce: 401 INVALID_SESSION_ID; NetSuite: 401 INVALID_LOGIN).
    """

    requires_response_body = True

    def __init__(
        self,
        credentials: S,
        *,
        system: str,
        refresh_margin: float = 30.0,
        is_expired_response: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        self._credentials = credentials
        self._system = system
        self._margin = refresh_margin
        self._is_expired = is_expired_response or (lambda r: r.status_code == 401)
        self.token: Token | None = None
        # One token request at a time per event loop: without it every request that starts
        # before the first token arrives fetches its own (16 at a worker's start), and token
        # endpoints are throttled harder than the APIs behind them.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def _token_request(self) -> httpx.Request:
        return self._credentials.token_request()

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # An unavailable or throttled token endpoint is transient; refused credentials are not.
            transient = transient_error(response, self._system, f"token endpoint: {response.text[:200]}")
            if transient:
                raise transient
            raise AuthenticationError(
                f"token request refused: {response.text[:200]}", system=self._system, status=response.status_code
            )
        body = response.json()
        expires_in = body.get("expires_in")
        self.token = Token(
            access_token=body["access_token"],
            expires_at=time.monotonic() + float(expires_in) if expires_in else None,
            instance_url=body.get("instance_url"),
        )

    def _fresh(self) -> bool:
        if self.token is None:
            return False
        return self.token.expires_at is None or time.monotonic() < self.token.expires_at - self._margin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._fresh():
            self._store((yield self._token_request()))
        assert self.token is not None
        request.headers["Authorization"] = f"Bearer {self.token.access_token}"
        response = yield request
        if self._is_expired(response):
            # The server ended the session early (revoked, rotated, shorter TTL): one refresh.
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self.token.access_token}"
            yield request

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # As auth_flow, but concurrent requests share one token fetch and one refresh.
        if not self._fresh():
            async with self._lock():
                if not self._fresh():  # another request fetched it while this one waited
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._store(token_response)
        assert self.token is not None
        sent_with = self.token
        request.headers["Authorization"] = f"Bearer {sent_with.access_token}"
        response = yield request
        await response.aread()
        if self._is_expired(response):
            async with self._lock():
                if self.token is sent_with:  # nobody refreshed since this request was sent
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._store(token_response)
            assert self.token is not None
            request.headers["Authorization"] = f"Bearer {self.token.access_token}"
            yield request


class TokenBasedAuth(httpx.Auth):
    """OAuth 1.0a signing of every request (RFC 5849, HMAC-SHA256), as NetSuite's
    token-based authentication asks: the integration record's consumer key and secret, a
    user's access token and secret, and `realm` = the account id (e.g. `1234567_SB1`). A
    fresh nonce and timestamp per request; a retried request is signed again. JSON bodies
    take no part in the signature (only form bodies do); the query string does."""

    def __init__(self, consumer_key: str, consumer_secret: str, token_id: str, token_secret: str, realm: str) -> None:
        self._client = OAuth1Client(
            consumer_key,
            client_secret=consumer_secret,
            resource_owner_key=token_id,
            resource_owner_secret=token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=realm.upper().replace("-", "_"),  # NetSuite: 1234567_SB1, whatever the URL's spelling
        )

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"TokenBasedAuth(realm={self._client.realm!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _uri, headers, _body = self._client.sign(str(request.url), request.method)
        request.headers["Authorization"] = headers["Authorization"]
        yield request


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def transient_error(
    response: httpx.Response, system: str, message: str, vendor_code: str | None = None
) -> RetryableError | None:
    """The classification every vendor shares: 429 and 5xx are worth retrying."""
    if response.status_code == 429:
        return RateLimitedError(
            message, system=system, status=429, vendor_code=vendor_code, retry_after=retry_after_seconds(response)
        )
    if response.status_code >= 500:
        return UnavailableError(
            message,
            system=system,
            status=response.status_code,
            vendor_code=vendor_code,
            retry_after=retry_after_seconds(response),
        )
    return None


async def send(client: httpx.AsyncClient, system: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; transport failures become retryable connector errors."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise UnavailableError(f"timeout: {exc!r}", system=system) from exc
    except httpx.TransportError as exc:
        raise UnavailableError(f"transport error: {exc!r}", system=system) from exc


def make_client(
    base_url: str,
    auth: httpx.Auth,
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 20,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        transport=transport,
        verify=tls_verify(),
        timeout=httpx.Timeout(timeout, connect=5.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": "d2r/0.1", "Accept": "application/json"},
    )
