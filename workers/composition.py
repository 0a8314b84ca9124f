"""The composition root: settings -> connectors (through connectors/registry.py) -> routers
-> activity objects. The one bootstrap of a worker process: which vendor serves which
instance is configuration (`vendor` of an endpoint), which package builds it is the
registry's table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from activities.config import ConfigActivities
from activities.crm import CrmActivities, CrmFeedbackActivities
from activities.erp import ErpActivities, ErpBillingActivities, ErpInboundActivities
from activities.feeds import FeedActivities
from activities.fx import FxLookupActivities, FxSyncActivities
from activities.master_data import MasterDataActivities
from activities.period_close import CloseActivities
from activities.posting import HubTimeFacts, PeriodLockActivities, PostingActivities
from activities.psa import PsaActivities, PsaDeliveryActivities, PsaInboundActivities
from activities.reporting import HubExceptionActivities, ReportingActivities, load_reference_data
from activities.source_sync import SourceSyncActivities
from activities.window_stage import Stage
from connectors.endpoints import Connections, Endpoint, trust_ca_file
from connectors.errors import ConfigurationError
from connectors.ports import CrmPort
from connectors.registry import connect_crm, connect_erp, connect_psa
from connectors.routing import ErpRouter, PsaRouter
from domain.deal import DealRules
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
    feeds: FeedActivities | None = None  # polled PSAs (needs a Temporal client)
    fx_sync: FxSyncActivities | None = None  # the ERPs' currency rates into the hub
    fx_lookup: FxLookupActivities | None = None  # the hub's rates for an engagement's conversions
    master_data: MasterDataActivities | None = None  # conflicts reach the hub's exceptions when there is one


async def build_activities(
    settings: WorkerSettings, stack: AsyncExitStack, client: Client | None = None
) -> ActivitySet:
    trust_ca_file(str(settings.vendor_ca_file) if settings.vendor_ca_file else None)
    connections = Connections(stack)
    crm_connection = connect_crm(settings.salesforce.vendor, _endpoint("crm", settings.salesforce), connections)
    crm = crm_connection.crm
    # Without PSA instances of their own, the default PSA in the CRM's org (Certinia: same client and token).
    psa_endpoints = settings.psa_instances or {"default": settings.salesforce.model_copy(update={"vendor": None})}
    psa_connections = {
        name: connect_psa(ep.vendor, _endpoint(name, ep, settings.psa_limits.max_concurrent), connections)
        for name, ep in psa_endpoints.items()
    }
    psa_router = PsaRouter(psa_connections, settings.psa_routing, settings.psa_default_instance, system="psa")
    # PSAs without webhooks are polled; their changes start the webhooks' inbound workflow
    feeds = {name: c.events for name, c in psa_connections.items() if c.events is not None}
    router = ErpRouter(
        {
            name: connect_erp(ep.vendor, _endpoint(name, ep, settings.erp_limits.max_concurrent), connections)
            for name, ep in settings.erp_instances.items()
        },
        settings.erp_routing,
        settings.erp_default_instance,
    )
    reference = settings.reference_data()  # one file: entities, tax, FX, chart of accounts
    rules = DealRules(legal_entities=settings.legal_entities)
    hub = None
    stage: Stage | None = None
    if settings.hub_database_url:
        from reporting.close_stage import WindowStage
        from reporting.hub import ReportingHub

        hub = await ReportingHub.connect(settings.hub_database_url)
        stack.push_async_callback(hub.close)
        # where a month-end window keeps its delivery and outboxes (its payloads carry ids)
        stage = WindowStage(hub.pool)
        await load_reference_data(hub, reference.legal_entities, reference.fx())
    posting = PostingActivities(
        psa_router,
        router,
        settings.legal_entities,
        reference.fx(),
        hub=HubTimeFacts(hub) if hub is not None else None,
        coa=reference.chart_of_accounts,
    )
    source_sync = SourceSyncActivities(psa_router, router, hub, crm=crm_connection.extract)
    master_data = MasterDataActivities(
        crm_connection.accounts, router, psa_router, settings.ownership(), hub, set(settings.legal_entities)
    )
    return ActivitySet(
        master_data=master_data,
        source_sync=source_sync,
        fx_sync=FxSyncActivities(router, hub),
        fx_lookup=FxLookupActivities(hub) if hub is not None else None,
        feeds=FeedActivities(client, feeds, settings.workflow_task_queue) if feeds and client is not None else None,
        config=ConfigActivities(
            rules,
            entities=reference.legal_entities,
            tax_rules=reference.tax_rules(),
            fx=reference.fx(),
            chart_of_accounts=reference.chart_of_accounts,
        ),
        crm=CrmActivities(crm),
        crm_feedback=CrmFeedbackActivities(crm, concurrency=settings.crm_limits.max_concurrent, stage=stage),
        psa=PsaActivities(psa_router),
        psa_delivery=PsaDeliveryActivities(psa_router, stage=stage),
        erp=ErpActivities(router),
        erp_billing=ErpBillingActivities(router, concurrency=settings.erp_limits.max_concurrent, keys=hub, stage=stage),
        psa_inbound=PsaInboundActivities(psa_router),
        erp_inbound=ErpInboundActivities(router),
        posting=posting,
        period_lock=PeriodLockActivities(router),
        close=CloseActivities(client, hub) if client is not None else None,
        reporting=ReportingActivities(
            hub,
            reference.legal_entities,
            reference.fx(),
            erp_instances=_instances(router, settings.legal_entities),
            psa_instances=_instances(psa_router, settings.legal_entities),
        )
        if hub is not None
        else None,
        hub_exceptions=HubExceptionActivities(hub, settings.ui_base_url, settings.temporal_namespace)
        if hub is not None
        else None,
    )


def _instances(router: ErpRouter | PsaRouter, legal_entities: Iterable[str]) -> dict[str, str]:
    """Legal entity -> the name of the instance serving it (the key map names instances)."""
    out = {}
    for entity in legal_entities:
        try:
            out[entity] = router.instance_name(entity)
        except ConfigurationError:
            continue  # an entity without an instance of this system: nothing to name
    return out


def crm_reader(
    endpoint: VendorEndpoint, vendor_ca_file: Path | None = None
) -> tuple[CrmPort, Callable[[], Awaitable[None]]]:
    """The CRM the API asks at the door whether an opportunity exists, and how to close it."""
    trust_ca_file(str(vendor_ca_file) if vendor_ca_file else None)
    stack = AsyncExitStack()
    # a caller is waiting: a short timeout
    short = endpoint.model_copy(update={"timeout_seconds": min(endpoint.timeout_seconds, 10.0)})
    crm = connect_crm(endpoint.vendor, _endpoint("crm", short), Connections(stack)).crm
    return crm, stack.aclose


def _endpoint(name: str, endpoint: VendorEndpoint, max_concurrent: int = 8) -> Endpoint:
    return Endpoint(
        name=name,
        url=endpoint.url,
        client_id=endpoint.client_id,
        client_secret=endpoint.client_secret.get_secret_value(),
        timeout=endpoint.timeout_seconds,
        max_concurrent=max_concurrent,
        options=dict(endpoint.options),
        private_key=_read_key(endpoint.private_key_file),
        key_id=endpoint.key_id,
        username=endpoint.username,
        token_secret=endpoint.token_secret.get_secret_value() if endpoint.token_secret else None,
    )


def _read_key(path: Path | None) -> str | None:
    """The PEM key, read once at start; a missing dev key just means no JWT login."""
    return path.read_text() if path is not None and path.is_file() else None
