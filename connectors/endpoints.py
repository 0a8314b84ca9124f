"""What a vendor package needs to connect one instance: its endpoint, the process's
shared clients (Certinia lives in the CRM's Salesforce org and shares its client and token)
and the certificate authorities its clients trust."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import certifi


@dataclass(frozen=True)
class Endpoint:
    name: str  # the instance name ("default", "erp-uk"...)
    url: str
    client_id: str
    client_secret: str
    timeout: float = 30.0
    private_key: str | None = None  # PEM of the certificate registered with the vendor (JWT logins)
    key_id: str | None = None  # NetSuite: the certificate id of the M2M mapping (the JWT's kid)
    username: str | None = None  # Salesforce: the JWT bearer flow's pre-authorised user
    max_concurrent: int = 8  # concurrent calls one activity may make (the queue's limit)
    options: Mapping[str, str] = field(default_factory=dict)  # vendor-specific (D365: tenant)
    token_secret: str | None = None  # NetSuite token-based auth: the access token's secret


_extra_ca: str | None = None  # see trust_ca_file


def trust_ca_file(ca_file: str | None) -> None:
    """Trust this CA's certificates too (besides the public CAs) in every vendor client
    made from now on in this process: the local CA of `make run` with TLS, or a corporate
    proxy's. The process's setting (`D2R_VENDOR_CA_FILE`), applied once at start."""
    global _extra_ca
    _extra_ca = ca_file


def tls_verify() -> ssl.SSLContext | bool:
    """What a vendor client verifies servers with (httpx's `verify`)."""
    if _extra_ca is None:
        return True
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=_extra_ca)
    return context


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Connections:
    """HTTP clients of the process, one per (vendor API, URL), closed with the worker."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack
        self._clients: dict[tuple[str, str, str], Any] = {}

    def shared(self, api: str, endpoint: Endpoint, make: Callable[[], C]) -> C:
        """One client per API, URL and credentials, whichever connector asks first."""
        key = (api, endpoint.url, endpoint.client_id)
        if key not in self._clients:
            client = make()
            self._stack.push_async_callback(client.aclose)
            self._clients[key] = client
        found: C = self._clients[key]
        return found

    def own(self, client: C) -> C:
        """A client of one instance only, closed with the worker."""
        self._stack.push_async_callback(client.aclose)
        return client
