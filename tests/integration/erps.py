"""The lifecycle on either ERP: a second stack whose UK01 books in Dynamics 365 (US01, DE01,
JP01 stay on NetSuite), and one probe per ERP that reads and pays what d2r posted there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from connectors.dynamics import DynamicsClient, DynamicsConfig
from connectors.dynamics.batch import Request
from connectors.dynamics.client import key, literal
from connectors.netsuite.client import NetSuiteClient
from contracts import search_attributes as sa
from simulators.dynamics import DynamicsSettings
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.integration.conftest import Simulator, Stack, free_port, start_simulator
from tests.vendor_auth import netsuite_config
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings

TENANT = DynamicsSettings().tenant


class ErpProbe(Protocol):
    """What the lifecycle test asks of the ERP the deal's entity books in."""

    async def invoice_total(self, invoice_id: str, erp_invoice_id: str) -> Decimal: ...

    async def pay(self, erp_invoice_id: str, amount: Decimal, on: str) -> None: ...

    async def order_of(self, opportunity_id: str) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


class NetSuiteProbe:
    def __init__(self, url: str) -> None:
        self.ns = NetSuiteClient(netsuite_config(url))

    async def invoice_total(self, invoice_id: str, erp_invoice_id: str) -> Decimal:
        record = await self.ns.get_by_external_id("invoice", invoice_id)
        assert record is not None and str(record["id"]) == erp_invoice_id
        return Decimal(str(record["total"]))

    async def pay(self, erp_invoice_id: str, amount: Decimal, on: str) -> None:
        await self.ns.transform("invoice", erp_invoice_id, "customerPayment", {"tranDate": on})

    async def order_of(self, opportunity_id: str) -> dict[str, Any] | None:
        async for row in self.ns.suiteql(
            f"SELECT id FROM transaction WHERE type = 'SalesOrd' AND custbody_d2r_opportunity_id = '{opportunity_id}'"
        ):
            return dict(row)
        return None

    async def aclose(self) -> None:
        await self.ns.aclose()


class DynamicsProbe:
    """Reads through OData like a D365 user; pays as the AR clerk would (a payment journal)."""

    def __init__(self, url: str) -> None:
        self.d365 = DynamicsClient(
            DynamicsConfig(base_url=url, tenant=TENANT, client_id="d2r-dev", client_secret="d2r-dev-secret")
        )

    async def invoice_total(self, invoice_id: str, erp_invoice_id: str) -> Decimal:
        header = await self.d365.first("FreeTextInvoiceHeaders", f"D2RReference eq {literal(invoice_id)}")
        assert header is not None and f"{header['dataAreaId']}:{header['InvoiceId']}" == erp_invoice_id
        assert header["IsPosted"] == "Yes"
        return Decimal(str(header["TotalInvoiceAmount"]))

    async def pay(self, erp_invoice_id: str, amount: Decimal, on: str) -> None:
        company, invoice = erp_invoice_id.split(":", 1)
        [trans] = await self.d365.all(
            "CustomerTransactions", f"dataAreaId eq {literal(company)} and Invoice eq {literal(invoice)}"
        )
        batch = f"PAY-{invoice}"
        await self.d365.changeset(
            [
                Request(
                    "POST",
                    "CustomerPaymentJournalHeaders",
                    {"dataAreaId": company, "JournalBatchNumber": batch, "JournalName": "CustPay"},
                ),
                Request(
                    "POST",
                    "CustomerPaymentJournalLines",
                    {
                        "dataAreaId": company,
                        "JournalBatchNumber": batch,
                        "TransactionDate": on,
                        "AccountDisplayValue": trans["CustomerAccount"],
                        "CreditAmount": str(amount),
                        "CurrencyCode": trans["CurrencyCode"],
                        "MarkedInvoice": invoice,
                    },
                ),
                Request(
                    "POST",
                    f"/data/CustomerPaymentJournalHeaders{key(dataAreaId=company, JournalBatchNumber=batch)}"
                    "/Microsoft.Dynamics.DataEntities.post",
                ),
            ]
        )

    async def order_of(self, opportunity_id: str) -> dict[str, Any] | None:
        return await self.d365.first("SalesOrderHeadersV2", f"D2ROpportunityId eq {literal(opportunity_id)}")

    async def aclose(self) -> None:
        await self.d365.aclose()


@dataclass
class ErpStack:
    stack: Stack
    erp: str  # which ERP the UK01 deal books in
    probe: ErpProbe


@pytest.fixture(scope="session", name="d365_simulators")
def d365_simulators_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Simulator], int]]:
    """Its own simulators (the deal's PSA project and time must not mix with the other stack's)."""
    base = tmp_path_factory.mktemp("sims-d365")
    api_port = free_port()
    hooks = f"http://127.0.0.1:{api_port}/v1/webhooks"
    sims = {
        "salesforce": start_simulator(
            "simulators.salesforce", base / "sf.sqlite", base / "sf.log", "--webhook-url", f"{hooks}/salesforce"
        ),
        "netsuite": start_simulator(
            "simulators.netsuite", base / "ns.sqlite", base / "ns.log", "--webhook-url", f"{hooks}/netsuite"
        ),
        "dynamics": start_simulator("simulators.dynamics", base / "d365.sqlite", base / "d365.log"),
    }
    yield sims, api_port
    for sim in sims.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


@pytest.fixture(scope="session", name="d365_stack")
async def d365_stack_fixture(
    d365_simulators: tuple[dict[str, Simulator], int], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    simulators, api_port = d365_simulators
    temporal_db = tmp_path_factory.mktemp("temporal-d365") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
        dev_server_extra_args=["--db-filename", str(temporal_db)],
    )
    settings = WorkerSettings(
        workflow_task_queue="d365-workflows",
        crm_task_queue="d365-crm",
        psa_task_queue="d365-psa",
        erp_task_queue="d365-erp",
        salesforce=VendorEndpoint(url=simulators["salesforce"].url),
        erp_instances={
            "default": VendorEndpoint(url=simulators["netsuite"].url),
            "d365": VendorEndpoint(url=simulators["dynamics"].url, vendor="dynamics", options={"tenant": TENANT}),
        },
        erp_routing={"UK01": "d365"},
    )
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as exits:
        acts = await build_activities(settings, exits)
        await start_workers(env.client, settings, activities_by_role(acts), exits)
        app = create_app(
            ApiSettings(
                workflow_task_queue="d365-workflows",
                crm_task_queue="d365-crm",
                psa_task_queue="d365-psa",
                erp_task_queue="d365-erp",
                salesforce=VendorEndpoint(url=simulators["salesforce"].url),
                static_tokens=True,
            ),
            temporal=env.client,
        )
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        http = await exits.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}"))
        try:
            yield Stack(env.client, http, simulators, settings, temporal_db)
        finally:
            server.should_exit = True
            await serving
    await env.shutdown()


@pytest.fixture(params=["netsuite", "dynamics"], name="erp_stack")
def erp_stack_fixture(request: pytest.FixtureRequest) -> Iterator[ErpStack]:
    """The same stack shape with the UK01 deal's books on NetSuite, then on D365."""
    if request.param == "netsuite":
        stack: Stack = request.getfixturevalue("stack")
        probe: ErpProbe = NetSuiteProbe(stack.sims["netsuite"].url)
    else:
        stack = request.getfixturevalue("d365_stack")
        probe = DynamicsProbe(stack.sims["dynamics"].url)
    yield ErpStack(stack, request.param, probe)
