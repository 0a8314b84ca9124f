"""With the ERP in an outage, CRM and PSA activities keep completing on their own task
queues while the ERP activity retries (honouring Retry-After); the real worker wiring
(workers.main.build_workers) on a Temporal dev server, simulators as processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.connectors.probe import IsolationProbe
from tests.integration.conftest import Simulator, start_simulator
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[dict[str, Simulator]]:
    started = {
        "salesforce": start_simulator("simulators.salesforce", tmp_path / "sf.sqlite", tmp_path / "sf.log"),
        "netsuite": start_simulator("simulators.netsuite", tmp_path / "ns.sqlite", tmp_path / "ns.log"),
    }
    yield started
    for sim in started.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


async def progress(handle: WorkflowHandle, want: list[str]) -> list[str]:
    for _ in range(100):
        done: list[str] = await handle.query(IsolationProbe.progress)
        if done == want:
            return done
        await asyncio.sleep(0.1)
    raise AssertionError(f"progress stuck at {done}")


async def test_erp_outage_leaves_crm_and_psa_flowing(sims: dict[str, Simulator]) -> None:
    ns_url = sims["netsuite"].url
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    settings = WorkerSettings(
        roles="crm,psa,erp",
        workflow_task_queue="iso-workflows",
        crm_task_queue="iso-crm",
        psa_task_queue="iso-psa",
        erp_task_queue="iso-erp",
        salesforce=VendorEndpoint(url=sims["salesforce"].url),
        erp_instances={"default": VendorEndpoint(url=ns_url)},
    )
    try:
        async with AsyncExitStack() as exits:
            acts = await build_activities(settings, exits)
            await start_workers(env.client, settings, activities_by_role(acts), exits)
            await exits.enter_async_context(Worker(env.client, task_queue="iso-probe", workflows=[IsolationProbe]))
            # The outage starts only now: on a loaded machine, starting the dev server and the
            # workers may take longer than the outage itself.
            async with httpx.AsyncClient(base_url=ns_url) as admin:
                response = await admin.post("/__admin/faults", json={"outage_seconds": 6})
                assert response.status_code == 200
            handle = await env.client.start_workflow(
                IsolationProbe.run, ["iso-crm", "iso-psa", "iso-erp"], id="isolation-probe", task_queue="iso-probe"
            )

            assert await progress(handle, ["crm", "psa"]) == ["crm", "psa"]  # while the ERP is down
            for _ in range(50):
                pending = (await handle.describe()).raw_description.pending_activities
                if pending and pending[0].HasField("last_failure"):
                    break
                await asyncio.sleep(0.05)
            assert [p.activity_type.name for p in pending] == ["erp.invoice_status"]
            # Types stay readable (only messages and stack traces are sealed); the server may
            # wrap a large pending failure as "exceeds size limit", keeping the chain below.
            chain, failure = [], pending[0].last_failure
            while True:
                chain.append(failure.application_failure_info.type)
                if not failure.HasField("cause"):
                    break
                failure = failure.cause
            assert "Unavailable" in chain
            assert "erp" not in await handle.query(IsolationProbe.progress)

            assert await handle.result() == ["crm", "psa", "erp"]  # the outage ends, the retry lands
    finally:
        await env.shutdown()
