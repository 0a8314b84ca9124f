"""The vendor registration table: which connector package builds each vendor's ports.

Adding a vendor = one package `connectors/<vendor>/` whose `connect(endpoint, connections)`
returns the system's connection bundle (connectors/ports.py) + one line below. Settings
choose the vendor of each instance by this table's key (docs/connectors.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from connectors import certinia, dynamics, kantata, netsuite, salesforce
from connectors.endpoints import Connections, Endpoint
from connectors.errors import ConfigurationError
from connectors.ports import CrmConnection, ErpConnection, PsaConnection

CRM_VENDORS: dict[str, Callable[[Endpoint, Connections], CrmConnection]] = {
    "salesforce": salesforce.connect,
}
PSA_VENDORS: dict[str, Callable[[Endpoint, Connections], PsaConnection]] = {
    "certinia": certinia.connect,
    "kantata": kantata.connect,
}
ERP_VENDORS: dict[str, Callable[[Endpoint, Connections], ErpConnection]] = {
    "netsuite": netsuite.connect,
    "dynamics": dynamics.connect,
}

# PSA vendors that send no webhooks: d2r polls their change feed on a Schedule
POLLED_PSA_VENDORS = frozenset({"kantata"})

# the vendor of an instance whose settings name none
DEFAULT_VENDORS = {"crm": "salesforce", "psa": "certinia", "erp": "netsuite"}

B = TypeVar("B")


def _factory(
    table: dict[str, Callable[[Endpoint, Connections], B]], system: str, vendor: str | None
) -> Callable[[Endpoint, Connections], B]:
    vendor = vendor or DEFAULT_VENDORS[system]
    try:
        return table[vendor]
    except KeyError:
        raise ConfigurationError(
            f"no {system} connector is registered for vendor {vendor!r} (known: {', '.join(sorted(table))})",
            system=system,
        ) from None


def connect_crm(vendor: str | None, endpoint: Endpoint, connections: Connections) -> CrmConnection:
    return _factory(CRM_VENDORS, "crm", vendor)(endpoint, connections)


def connect_psa(vendor: str | None, endpoint: Endpoint, connections: Connections) -> PsaConnection:
    return _factory(PSA_VENDORS, "psa", vendor)(endpoint, connections)


def connect_erp(vendor: str | None, endpoint: Endpoint, connections: Connections) -> ErpConnection:
    return _factory(ERP_VENDORS, "erp", vendor)(endpoint, connections)


def polled_instances(vendors: dict[str, str | None]) -> list[str]:
    """The PSA instances (name -> vendor) whose changes are polled, not pushed."""
    return sorted(name for name, vendor in vendors.items() if (vendor or DEFAULT_VENDORS["psa"]) in POLLED_PSA_VENDORS)
