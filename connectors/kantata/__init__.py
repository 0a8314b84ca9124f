"""Kantata OX: the PSA port, the month-end PSA ports and the subscribed-event feed on
Kantata's REST API (docs/connectors.md)."""

from __future__ import annotations

from connectors.endpoints import Connections, Endpoint
from connectors.kantata.client import SYSTEM, KantataClient, KantataConfig
from connectors.kantata.events import KantataEvents
from connectors.kantata.extract import KantataExtract
from connectors.kantata.posting import KantataPosting
from connectors.kantata.psa import KantataPsa
from connectors.ports import PsaConnection

__all__ = ["SYSTEM", "KantataClient", "KantataConfig", "KantataEvents", "connect", "psa_connection"]


def psa_connection(client: KantataClient) -> PsaConnection:
    return PsaConnection(
        system=SYSTEM,
        psa=KantataPsa(client),
        posting=KantataPosting(client),
        extract=KantataExtract(client),
        events=KantataEvents(client),  # no webhooks: its subscribed events are polled
    )


def connect(endpoint: Endpoint, connections: Connections) -> PsaConnection:
    """One tenant's client (one token) under every Kantata port."""
    client = connections.own(
        KantataClient(
            KantataConfig(
                base_url=endpoint.url,
                client_id=endpoint.client_id,
                client_secret=endpoint.client_secret,
                timeout=endpoint.timeout,
            )
        )
    )
    return psa_connection(client)
