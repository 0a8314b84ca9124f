"""The composition root: vendor clients -> ports -> activity objects, from settings.

This is the only place that knows which vendor serves which port; adding Kantata or
Dynamics means one connector module and one line here.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from activities.config import ConfigActivities
from activities.crm import CrmActivities, CrmFeedbackActivities
from activities.erp import ErpActivities, ErpBillingActivities, ErpInboundActivities
from activities.psa import PsaActivities, PsaDeliveryActivities, PsaInboundActivities
from connectors.crm_salesforce import SalesforceCrm
from connectors.erp_netsuite import ErpRouter, NetSuiteErp
from connectors.netsuite import NetSuiteClient, NetSuiteConfig
from connectors.psa_certinia import CertiniaPsa
from connectors.salesforce import SalesforceClient, SalesforceConfig
from domain.deal import DealRules
from workers.settings import WorkerSettings


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


async def build_activities(settings: WorkerSettings, stack: AsyncExitStack) -> ActivitySet:
    sf = settings.salesforce
    salesforce = SalesforceClient(SalesforceConfig(
        base_url=sf.url, client_id=sf.client_id, client_secret=sf.client_secret.get_secret_value(),
        timeout=sf.timeout_seconds))
    stack.push_async_callback(salesforce.aclose)
    instances: dict[str, NetSuiteErp] = {}
    for name, endpoint in settings.erp_instances.items():
        client = NetSuiteClient(NetSuiteConfig(
            base_url=endpoint.url, client_id=endpoint.client_id,
            client_secret=endpoint.client_secret.get_secret_value(), instance=name,
            timeout=endpoint.timeout_seconds))
        stack.push_async_callback(client.aclose)
        instances[name] = NetSuiteErp(client)
    rules = DealRules(legal_entities=settings.legal_entities)
    crm = SalesforceCrm(salesforce)
    # Certinia lives in the same Salesforce org, so it shares the client (and its token).
    psa = CertiniaPsa(salesforce)
    router = ErpRouter(dict(instances), settings.erp_routing, settings.erp_default_instance)
    return ActivitySet(
        config=ConfigActivities(rules), crm=CrmActivities(crm), crm_feedback=CrmFeedbackActivities(crm),
        psa=PsaActivities(psa), psa_delivery=PsaDeliveryActivities(psa),
        erp=ErpActivities(router), erp_billing=ErpBillingActivities(router),
        psa_inbound=PsaInboundActivities(psa), erp_inbound=ErpInboundActivities(router),
    )
