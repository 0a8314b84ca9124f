"""Microsoft Dynamics 365 Finance: the ERP over OData v4 data entities, one client per
environment (an environment holds several companies; the legal entity names the company)."""

from __future__ import annotations

from connectors.dynamics.client import SYSTEM, DynamicsClient, DynamicsConfig
from connectors.dynamics.customers import DynamicsCustomers
from connectors.dynamics.erp import DynamicsErp
from connectors.dynamics.extract import DynamicsExtract
from connectors.dynamics.fx import DynamicsFxRates
from connectors.dynamics.posting import DynamicsPosting
from connectors.dynamics.projects import DynamicsProjects
from connectors.dynamics.receivables import DynamicsReceivables
from connectors.dynamics.workers import DynamicsWorkers
from connectors.endpoints import Connections, Endpoint
from connectors.errors import ConfigurationError
from connectors.ports import ErpConnection

__all__ = [
    "DynamicsClient",
    "DynamicsConfig",
    "DynamicsErp",
    "DynamicsExtract",
    "DynamicsPosting",
    "DynamicsReceivables",
    "connect",
    "erp_connection",
]


def erp_connection(client: DynamicsClient, concurrency: int = 4) -> ErpConnection:
    posting = DynamicsPosting(client, concurrency=concurrency)
    return ErpConnection(
        system=SYSTEM,
        erp=DynamicsErp(client),
        receivables=DynamicsReceivables(client),
        posting=posting,
        period_lock=posting,
        extract=DynamicsExtract(client),
        fx=DynamicsFxRates(client),
        employees=DynamicsWorkers(client, concurrency=concurrency),
        customers=DynamicsCustomers(client),
        projects=DynamicsProjects(client, concurrency=concurrency),
    )


def connect(endpoint: Endpoint, connections: Connections) -> ErpConnection:
    """`options`: `tenant` (required: the Entra ID tenant), `resource` (default: the URL),
    `token_url` (default: `<url>/<tenant>/oauth2/v2.0/token`; login.microsoftonline.com
    in production)."""
    options = dict(endpoint.options)
    tenant = options.get("tenant")
    if not tenant:
        raise ConfigurationError(f"D365 instance {endpoint.name!r} needs options.tenant", system=SYSTEM)
    client = connections.own(
        DynamicsClient(
            DynamicsConfig(
                base_url=endpoint.url,
                tenant=tenant,
                client_id=endpoint.client_id,
                client_secret=endpoint.client_secret,
                instance=endpoint.name,
                timeout=endpoint.timeout,
                resource=options.get("resource"),
                token_url=options.get("token_url"),
            )
        )
    )
    return erp_connection(client, concurrency=endpoint.max_concurrent)
