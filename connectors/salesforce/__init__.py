"""Salesforce: the CRM (REST API, SOQL, external-id upserts). Certinia PSA lives in the
same org and reuses this package's client (connectors/certinia)."""

from __future__ import annotations

from connectors.endpoints import Connections, Endpoint
from connectors.ports import CrmConnection
from connectors.salesforce.accounts import SalesforceAccounts
from connectors.salesforce.bookings import SalesforceBookingsExtract
from connectors.salesforce.client import SYSTEM, SalesforceClient, SalesforceConfig
from connectors.salesforce.crm import SalesforceCrm

__all__ = ["SalesforceClient", "SalesforceConfig", "client", "connect", "crm_connection"]


def client(endpoint: Endpoint, connections: Connections) -> SalesforceClient:
    """The org's client, shared by every connector of the same org (one token)."""
    return connections.shared(
        SYSTEM,
        endpoint,
        lambda: SalesforceClient(
            SalesforceConfig(
                base_url=endpoint.url,
                client_id=endpoint.client_id,
                client_secret=endpoint.client_secret,
                username=endpoint.username,
                private_key=endpoint.private_key if endpoint.username else None,
                timeout=endpoint.timeout,
                # the JWT bearer flow's audience: https://test.salesforce.com for a sandbox
                audience=endpoint.options.get("audience", SalesforceConfig.audience),
            )
        ),
    )


def crm_connection(sf: SalesforceClient) -> CrmConnection:
    return CrmConnection(
        system=SYSTEM, crm=SalesforceCrm(sf), extract=SalesforceBookingsExtract(sf), accounts=SalesforceAccounts(sf)
    )


def connect(endpoint: Endpoint, connections: Connections) -> CrmConnection:
    return crm_connection(client(endpoint, connections))
