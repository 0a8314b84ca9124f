"""One D365 environment's port implementations, built from its endpoint settings (the
composition root calls this; nothing here reads configuration itself)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from connectors.dynamics.client import DynamicsClient, DynamicsConfig
from connectors.dynamics.erp import DynamicsErp
from connectors.dynamics.extract import DynamicsExtract
from connectors.dynamics.posting import DynamicsPosting
from connectors.dynamics.receivables import DynamicsReceivables


@dataclass
class DynamicsPorts:
    client: DynamicsClient
    erp: DynamicsErp
    posting: DynamicsPosting
    extract: DynamicsExtract
    receivables: DynamicsReceivables


def build(
    *,
    url: str,
    tenant: str,
    client_id: str,
    client_secret: str,
    instance: str,
    timeout: float = 30.0,
    resource: str | None = None,
    token_url: str | None = None,
    concurrency: int = 4,
    transport: httpx.AsyncBaseTransport | None = None,
) -> DynamicsPorts:
    client = DynamicsClient(
        DynamicsConfig(
            base_url=url,
            tenant=tenant,
            client_id=client_id,
            client_secret=client_secret,
            instance=instance,
            timeout=timeout,
            resource=resource,
            token_url=token_url,
        ),
        transport=transport,
    )
    return DynamicsPorts(
        client=client,
        erp=DynamicsErp(client),
        posting=DynamicsPosting(client, concurrency=concurrency),
        extract=DynamicsExtract(client),
        receivables=DynamicsReceivables(client),
    )
