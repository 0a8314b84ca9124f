"""Connector contract tests: the real connectors against in-process simulators
(httpx.ASGITransport on the simulators' ASGI apps), one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.certinia.psa import CertiniaPsa
from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.netsuite.erp import NetSuiteErp
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.crm import SalesforceCrm
from domain.deal import DealRules, Engagement, validate_deal
from domain.model import Invoice, InvoiceLine, JournalEntry, JournalLine, Lineage, SourceKind, TaxLine
from domain.money import Money
from domain.tax import TaxTreatment
from simulators._settings import SimSettings
from simulators.devkeys import DEV_KEY_ID
from tests.vendor_auth import private_key_pem

OPP_US = "006Dd0000000001IAA"  # Globex US: fixed fee 120,000 + T&M 200 h Senior Consultant, USD
OPP_JP = "006Dd0000000003IAA"  # Umbrella Japan: milestone 30,000,000 JPY
RULES = DealRules(legal_entities={"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"})


class Admin:
    """The simulator's admin surface (no auth, never faulted) and raw vendor calls."""

    def __init__(self, app: Any, base_url: str) -> None:
        self.app = app
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    async def faults(self, **config: Any) -> None:
        response = await self.http.post("/__admin/faults", json=config)
        assert response.status_code == 200, response.text

    async def clear_faults(self) -> None:
        assert (await self.http.delete("/__admin/faults")).status_code == 200

    async def counts(self) -> dict[str, int]:
        body = (await self.http.get("/__admin/counts")).json()
        return dict(body.get("counts", body))

    async def duplicates(self) -> dict[str, Any]:
        return dict((await self.http.get("/__admin/duplicates")).json())

    async def records(self, rtype: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/__admin/records/{rtype}", params={"limit": 100000})
        return list(response.json()["records"])

    async def expire_tokens(self) -> None:
        assert (await self.http.post("/__admin/tokens/expire")).status_code == 200

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class Salesforce:
    admin: Admin
    client: SalesforceClient
    crm: SalesforceCrm
    psa: CertiniaPsa


@dataclass
class NetSuite:
    admin: Admin
    client: NetSuiteClient
    erp: NetSuiteErp


async def make_salesforce(tmp_path: Path, page_size: int = 5) -> Salesforce:
    from simulators.salesforce import create_app

    app = create_app(SimSettings(db=str(tmp_path / "sf.sqlite"), seed="demo", port=8301, page_size=page_size))
    client = SalesforceClient(
        SalesforceConfig(base_url="http://sf.test", client_id="d2r-dev", client_secret="d2r-dev-secret"),
        transport=httpx.ASGITransport(app=app),
    )
    return Salesforce(Admin(app, "http://sf.test"), client, SalesforceCrm(client), CertiniaPsa(client))


async def make_netsuite(tmp_path: Path, name: str = "ns") -> NetSuite:
    from simulators.netsuite import create_app

    app = create_app(SimSettings(db=str(tmp_path / f"{name}.sqlite"), seed="demo", port=8302))
    client = NetSuiteClient(
        NetSuiteConfig(
            base_url="http://ns.test", client_id="d2r-dev", certificate_id=DEV_KEY_ID, private_key=private_key_pem()
        ),
        transport=httpx.ASGITransport(app=app),
    )
    return NetSuite(Admin(app, "http://ns.test"), client, NetSuiteErp(client))


@pytest.fixture
async def sf(tmp_path: Path) -> AsyncIterator[Salesforce]:
    made = await make_salesforce(tmp_path)
    yield made
    await made.client.aclose()
    await made.admin.aclose()
    made.admin.app.store.close()


@pytest.fixture
async def ns(tmp_path: Path) -> AsyncIterator[NetSuite]:
    made = await make_netsuite(tmp_path)
    yield made
    await made.client.aclose()
    await made.admin.aclose()
    made.admin.app.store.close()


async def engagement(crm: SalesforceCrm, opportunity_id: str = OPP_US) -> Engagement:
    result = validate_deal(await crm.read_opportunity(opportunity_id), RULES)
    assert isinstance(result, Engagement), result
    return result


def lineage(legal_entity: str = "US01") -> Lineage:
    return Lineage(
        opportunity_id=OPP_US,
        customer_id="001Dd0000000002IAA",
        project_id="a0PDd0000000001IAA",
        contract_id="C-1",
        legal_entity=legal_entity,
    )


def usd(amount: str, currency: str = "USD") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def invoice(
    invoice_id: str = "INV-engagement-1-2026-03", on: date = date(2026, 3, 31), net: str = "1000.00", tax: str = "0.00"
) -> Invoice:
    line = InvoiceLine(
        invoice_line_id=f"{invoice_id}:1",
        contract_line_id="L-1",
        billing_event_id=f"BE-{invoice_id}",
        kind=SourceKind.TIME,
        description="Senior Consultant, 4 h",
        net=usd(net),
        tax=TaxLine(treatment=TaxTreatment.STANDARD, jurisdiction="US", rate=Decimal("0"), amount=usd(tax)),
    )
    return Invoice(
        invoice_id=invoice_id,
        lineage=lineage(),
        customer_id="001Dd0000000002IAA",
        currency="USD",
        invoice_date=on,
        due_date=date(2026, 4, 30),
        period=on.strftime("%Y-%m"),
        lines=[line],
        net_total=usd(net),
        tax_total=usd(tax),
        total=usd(str(Decimal(net) + Decimal(tax))),
    )


def journal(
    journal_id: str = "JE-engagement-1-2026-03", amount: str = "500.00", on: date = date(2026, 3, 31)
) -> JournalEntry:
    zero = usd("0")
    return JournalEntry(
        journal_entry_id=journal_id,
        lineage=lineage(),
        legal_entity="US01",
        entry_date=on,
        period=on.strftime("%Y-%m"),
        currency="USD",
        memo="Revenue 2026-03",
        lines=[
            JournalLine(account="1250 Contract balance (unbilled / deferred)", debit=usd(amount), credit=zero),
            JournalLine(account="4000 Services revenue", debit=zero, credit=usd(amount)),
        ],
    )
