"""NetSuite: the ERP (REST record service, SuiteQL, externalId upserts), one client per instance."""

from __future__ import annotations

from connectors.endpoints import Connections, Endpoint
from connectors.netsuite.client import SYSTEM, NetSuiteClient, NetSuiteConfig
from connectors.netsuite.dates import DEFAULT_DATE_FORMAT
from connectors.netsuite.erp import NetSuiteErp
from connectors.netsuite.extract import NetSuiteExtract
from connectors.netsuite.posting import NetSuitePosting
from connectors.netsuite.receivables import NetSuiteReceivables
from connectors.ports import ErpConnection

__all__ = ["NetSuiteClient", "NetSuiteConfig", "connect", "erp_connection"]


def erp_connection(ns: NetSuiteClient, concurrency: int = 8, page_size: int = 1000) -> ErpConnection:
    posting = NetSuitePosting(ns, concurrency=concurrency)
    return ErpConnection(
        system=SYSTEM,
        erp=NetSuiteErp(ns),
        receivables=NetSuiteReceivables(ns, concurrency=concurrency, page_size=page_size),
        posting=posting,
        period_lock=posting,
        extract=NetSuiteExtract(ns, page_size=page_size),
    )


def connect(endpoint: Endpoint, connections: Connections) -> ErpConnection:
    ns = connections.own(
        NetSuiteClient(
            NetSuiteConfig(
                base_url=endpoint.url,
                client_id=endpoint.client_id,
                certificate_id=endpoint.key_id or "",
                private_key=endpoint.private_key or "",
                instance=endpoint.name,
                timeout=endpoint.timeout,
                date_format=endpoint.options.get("date_format", DEFAULT_DATE_FORMAT),
            )
        )
    )
    return erp_connection(ns, concurrency=endpoint.max_concurrent)
