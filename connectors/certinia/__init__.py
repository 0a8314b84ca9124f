"""Certinia PSA: the pse__ objects of the Salesforce org, through the org's Salesforce client."""

from __future__ import annotations

from connectors import salesforce
from connectors.certinia.extract import CertiniaExtract
from connectors.certinia.posting import CertiniaPosting
from connectors.certinia.projects import CertiniaProjects
from connectors.certinia.psa import CertiniaPsa
from connectors.certinia.resources import CertiniaResources
from connectors.endpoints import Connections, Endpoint
from connectors.ports import PsaConnection
from connectors.salesforce.client import SalesforceClient

SYSTEM = "certinia"

__all__ = ["SYSTEM", "connect", "psa_connection"]


def psa_connection(sf: SalesforceClient) -> PsaConnection:
    return PsaConnection(
        system=SYSTEM,
        psa=CertiniaPsa(sf),
        posting=CertiniaPosting(sf),
        extract=CertiniaExtract(sf),
        resources=CertiniaResources(sf),
        projects=CertiniaProjects(sf),
    )


def connect(endpoint: Endpoint, connections: Connections) -> PsaConnection:
    return psa_connection(salesforce.client(endpoint, connections))
