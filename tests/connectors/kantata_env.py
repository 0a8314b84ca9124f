"""A Kantata simulator in-process with the Kantata connector on it, for connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from connectors.kantata import psa_connection
from connectors.kantata.client import KantataClient, KantataConfig
from connectors.kantata.extract import KantataExtract
from connectors.kantata.posting import KantataPosting
from connectors.kantata.psa import KantataPsa
from connectors.routing import PsaRouter
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.money import Money
from simulators.kantata import KantataSettings, create_app
from tests.connectors.conftest import Admin

API = "/api/v1"
CREDS = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def de_engagement(opportunity_id: str = "006KT0000000001") -> Engagement:
    """An acquired DE01 unit's deal: fixed fee EUR 100,000.01 + 120 h Senior Consultant T&M."""
    return Engagement(
        opportunity_id=opportunity_id,
        name="Initech GmbH rollout",
        customer=Customer(customer_id="001KT0000000001", name="Initech GmbH", country="DE"),
        legal_entity="DE01",
        currency="EUR",
        contract_value=eur("127000.01"),
        close_date=date(2026, 10, 15),
        billing_terms="Net 30",
        service_package="IMPL-STD",
        contract_start=date(2026, 11, 1),
        contract_end=date(2027, 3, 31),
        lines=[
            ContractLine(
                line_id="L-FF",
                name="Implementation",
                billing_model=BillingModel.FIXED_FEE,
                revenue_method=RevenueMethod.COST_TO_COST,
                amount=eur("100000.01"),
            ),
            ContractLine(
                line_id="L-TM",
                name="Advisory",
                billing_model=BillingModel.TIME_AND_MATERIALS,
                revenue_method=RevenueMethod.AS_DELIVERED,
                amount=eur("27000.00"),
                role="Senior Consultant",
                hours=Decimal(120),
            ),
        ],
    )


@dataclass
class Kantata:
    admin: Admin
    raw: httpx.AsyncClient  # what people do in Kantata (log time, approve, complete milestones)
    client: KantataClient
    psa: KantataPsa
    posting: KantataPosting
    extract: KantataExtract
    seed: dict[str, Any]

    async def post(self, key: str, singular: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.raw.post(f"{API}/{key}", json={singular: body})
        assert r.status_code == 200, r.text
        ref = r.json()["results"][0]
        return dict(r.json()[ref["key"]][ref["id"]])

    async def put(self, key: str, singular: str, rid: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.raw.put(f"{API}/{key}/{rid}", json={singular: body})
        assert r.status_code == 200, r.text
        return dict(r.json()[key][rid])

    def router(self) -> PsaRouter:
        """What the activities see: DE01 delivered on this Kantata tenant."""
        return PsaRouter({"kantata": psa_connection(self.client)}, {"DE01": "kantata"}, None, system="psa")

    def user(self, name: str) -> str:
        return str(next(u["id"] for u in self.seed["users"] if u["name"] == name))

    async def log_time(self, workspace: str, user: str, day: str, minutes: int, approve: bool = True) -> str:
        entry = await self.post(
            "time_entries", "time_entry", {"workspace_id": workspace, "user_id": user, "date_performed": day,
                                           "time_in_minutes": minutes})  # fmt: skip
        if approve:
            await self.put("time_entries", "time_entry", entry["id"], {"approved": True})
        return str(entry["id"])


async def kantata(tmp_path: Path, **settings: Any) -> AsyncIterator[Kantata]:
    app = create_app(KantataSettings(db=str(tmp_path / "kt.sqlite"), seed="demo", **settings))
    transport = httpx.ASGITransport(app=app)
    raw = httpx.AsyncClient(transport=transport, base_url="http://kt.test")
    raw.headers["authorization"] = "Bearer " + (await raw.post("/oauth/token", data=CREDS)).json()["access_token"]
    client = KantataClient(
        KantataConfig(base_url="http://kt.test", client_id="d2r-dev", client_secret="d2r-dev-secret",
                      throttle_base_delay=0.01),
        transport=transport,
    )  # fmt: skip
    made = Kantata(
        Admin(app, "http://kt.test"),
        raw,
        client,
        KantataPsa(client),
        KantataPosting(client),
        KantataExtract(client),
        app.seed_info_cached,
    )
    yield made
    await client.aclose()
    await raw.aclose()
    await made.admin.aclose()
    app.store.close()
