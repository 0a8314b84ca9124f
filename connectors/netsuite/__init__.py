"""NetSuite: the ERP (REST record service, SuiteQL, externalId upserts), one client per instance."""

from __future__ import annotations

from connectors.endpoints import Connections, Endpoint
from connectors.netsuite.client import SYSTEM, NetSuiteClient, NetSuiteConfig, TokenBasedAuthConfig
from connectors.netsuite.customers import NetSuiteCustomers
from connectors.netsuite.dates import DEFAULT_DATE_FORMAT
from connectors.netsuite.employees import NetSuiteEmployees
from connectors.netsuite.erp import NetSuiteErp
from connectors.netsuite.extract import NetSuiteExtract
from connectors.netsuite.fx import NetSuiteFxRates
from connectors.netsuite.posting import NetSuitePosting
from connectors.netsuite.projects import NetSuiteProjects
from connectors.netsuite.receivables import NetSuiteReceivables
from connectors.ports import ErpConnection

__all__ = ["NetSuiteClient", "NetSuiteConfig", "TokenBasedAuthConfig", "connect", "erp_connection"]


def erp_connection(ns: NetSuiteClient, concurrency: int = 8, page_size: int = 1000) -> ErpConnection:
    posting = NetSuitePosting(ns, concurrency=concurrency)
    return ErpConnection(
        system=SYSTEM,
        erp=NetSuiteErp(ns),
        receivables=NetSuiteReceivables(ns, concurrency=concurrency, page_size=page_size),
        posting=posting,
        period_lock=posting,
        extract=NetSuiteExtract(ns, page_size=page_size),
        fx=NetSuiteFxRates(ns),
        employees=NetSuiteEmployees(ns, concurrency=concurrency),
        customers=NetSuiteCustomers(ns, concurrency=concurrency),
        projects=NetSuiteProjects(ns, concurrency=concurrency),
    )


def _tba(endpoint: Endpoint) -> TokenBasedAuthConfig | None:
    """Token-based auth when `options.auth` is `tba`: the integration record's consumer key
    and secret are the endpoint's client id and secret, the access token its `token_id`
    option and `token_secret`, the realm the `account_id` option."""
    if endpoint.options.get("auth", "oauth2").lower() != "tba":
        return None
    if not endpoint.token_secret or not endpoint.options.get("token_id") or not endpoint.options.get("account_id"):
        raise ValueError("NetSuite TBA needs options account_id and token_id, and token_secret")
    return TokenBasedAuthConfig(
        account_id=endpoint.options["account_id"],
        consumer_key=endpoint.client_id,
        consumer_secret=endpoint.client_secret,
        token_id=endpoint.options["token_id"],
        token_secret=endpoint.token_secret,
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
                tba=_tba(endpoint),
            )
        )
    )
    return erp_connection(ns, concurrency=endpoint.max_concurrent)
