"""The composition root: vendor clients -> ports -> activity objects, from settings.

This is the only place that knows which vendor serves which port; adding Kantata or
Dynamics means one connector module and one line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from temporalio.client import Client

from activities.config import ConfigActivities
from activities.crm import CrmActivities, CrmFeedbackActivities
from activities.erp import ErpActivities, ErpBillingActivities, ErpInboundActivities
from activities.period_close import CloseActivities, CloseBatch
from activities.posting import HubTimeFacts, PeriodLockActivities, PostingActivities
from activities.psa import PsaActivities, PsaDeliveryActivities, PsaInboundActivities
from activities.reporting import HubExceptionActivities, ReportingActivities, load_reference_data
from activities.source_sync import SourceSyncActivities
from connectors.certinia.extract import CertiniaExtract
from connectors.certinia.posting import CertiniaPosting
from connectors.certinia.psa import CertiniaPsa
from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.netsuite.erp import NetSuiteErp
from connectors.netsuite.extract import NetSuiteExtract
from connectors.netsuite.posting import NetSuitePosting
from connectors.netsuite.receivables import NetSuiteReceivables
from connectors.routing import ErpRouter
from connectors.salesforce.bookings import SalesforceBookingsExtract
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.crm import SalesforceCrm
from domain.deal import DealRules
from domain.reference_data import default_fx_rates, default_legal_entities
from workers.settings import VendorEndpoint, WorkerSettings


@dataclass
class ActivitySet:
    config: ConfigActivities
    crm: CrmActivities
    crm_feedback: CrmFeedbackActivities
    psa: PsaActivities
    psa_delivery: PsaDeliveryActivities
    erp: ErpActivities
    erp_billing: ErpBillingActivities
    psa_inbound: PsaInboundActivities
    erp_inbound: ErpInboundActivities
    posting: PostingActivities | None = None
    period_lock: PeriodLockActivities | None = None
    close: CloseActivities | None = None  # needs a Temporal client
    reporting: ReportingActivities | None = None  # needs a hub
    hub_exceptions: HubExceptionActivities | None = None
    source_sync: SourceSyncActivities | None = None  # answers "skipped" without a hub


async def build_activities(
    settings: WorkerSettings, stack: AsyncExitStack, client: Client | None = None
) -> ActivitySet:
    sf = settings.salesforce
    salesforce = SalesforceClient(
        SalesforceConfig(
            base_url=sf.url,
            client_id=sf.client_id,
            client_secret=sf.client_secret.get_secret_value(),
            timeout=sf.timeout_seconds,
        )
    )
    stack.push_async_callback(salesforce.aclose)
    instances: dict[str, NetSuiteErp] = {}
    posting_erps: dict[str, NetSuitePosting] = {}
    extract_erps: dict[str, NetSuiteExtract] = {}
    receivables: dict[str, NetSuiteReceivables] = {}
    for name, endpoint in settings.erp_instances.items():
        ns = NetSuiteClient(
            NetSuiteConfig(
                base_url=endpoint.url,
                client_id=endpoint.client_id,
                client_secret=endpoint.client_secret.get_secret_value(),
                instance=name,
                timeout=endpoint.timeout_seconds,
            )
        )
        stack.push_async_callback(ns.aclose)
        instances[name] = NetSuiteErp(ns)
        posting_erps[name] = NetSuitePosting(ns, concurrency=settings.erp_limits.max_concurrent)
        extract_erps[name] = NetSuiteExtract(ns)
        receivables[name] = NetSuiteReceivables(ns, concurrency=settings.erp_limits.max_concurrent)
    rules = DealRules(legal_entities=settings.legal_entities)
    crm = SalesforceCrm(salesforce)
    # Certinia lives in the same Salesforce org, so it shares the client (and its token).
    psa = CertiniaPsa(salesforce)
    router = ErpRouter(dict(instances), settings.erp_routing, settings.erp_default_instance)
    hub = None
    if settings.hub_database_url:
        from reporting.hub import ReportingHub

        hub = await ReportingHub.connect(settings.hub_database_url)
        stack.push_async_callback(hub.close)
        await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    posting = PostingActivities(
        CertiniaPosting(salesforce),
        posting_erps,
        settings.erp_routing,
        settings.erp_default_instance,
        settings.legal_entities,
        default_fx_rates(),
        hub=HubTimeFacts(hub) if hub is not None else None,
    )
    source_sync = SourceSyncActivities(
        CertiniaExtract(salesforce),
        extract_erps,
        settings.erp_routing,
        settings.erp_default_instance,
        hub,
        crm=SalesforceBookingsExtract(salesforce),
    )
    return ActivitySet(
        source_sync=source_sync,
        config=ConfigActivities(rules),
        crm=CrmActivities(crm),
        crm_feedback=CrmFeedbackActivities(crm),
        psa=PsaActivities(psa),
        psa_delivery=PsaDeliveryActivities(psa),
        erp=ErpActivities(router),
        erp_billing=ErpBillingActivities(router),
        psa_inbound=PsaInboundActivities(psa),
        erp_inbound=ErpInboundActivities(router),
        posting=posting,
        period_lock=PeriodLockActivities(posting),
        close=CloseActivities(
            client,
            hub,
            batch=CloseBatch(
                psa=PsaDeliveryActivities(psa),
                erp=ErpBillingActivities(router),
                crm=CrmFeedbackActivities(crm),
                receivables=lambda entity: receivables[router.instance_name(entity)],
                hub=ReportingActivities(hub, default_legal_entities(), default_fx_rates()) if hub is not None else None,
                # the window's engagements share the ERP's concurrency budget, like posting pages
                concurrency=settings.erp_limits.max_concurrent,
            ),
        )
        if client is not None
        else None,
        reporting=ReportingActivities(hub, default_legal_entities(), default_fx_rates()) if hub is not None else None,
        hub_exceptions=HubExceptionActivities(hub, settings.ui_base_url, settings.temporal_namespace)
        if hub is not None
        else None,
    )


def crm_reader(endpoint: VendorEndpoint) -> tuple[SalesforceCrm, Callable[[], Awaitable[None]]]:
    """The CRM the API asks at the door whether an opportunity exists, and how to close it."""
    client = SalesforceClient(
        SalesforceConfig(
            base_url=endpoint.url,
            client_id=endpoint.client_id,
            client_secret=endpoint.client_secret.get_secret_value(),
            timeout=min(endpoint.timeout_seconds, 10.0),  # a caller is waiting
        )
    )
    return SalesforceCrm(client), client.aclose
