"""The OpenAPI document is the contract: schemathesis (4.x) runs against the running API on
its own stack (dev server, simulators, worker, API on uvicorn), bounded to a few examples
per operation and two minutes, with the stateful phase and the standard checks, and the
test fails on any 5xx, undocumented status code or content type, or schema violation.

Its own stack, because generated requests that pass the door do real work (a month-end
close of a configured entity in the open window): the other integration tests' simulators
must not see it."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ROLES, ApiSettings, TokenGrant
from contracts import search_attributes as sa
from reporting.embedded import start_embedded_postgres, stop_embedded_postgres
from reporting.migrate import migrate_async
from tests.conftest import TEST_CONVERTER, TEST_KEY_RING, wheel_binary
from tests.integration.conftest import free_port, start_simulator
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings

pytestmark = pytest.mark.integration

TOKEN = "schemathesis-every-role"
# Bounded: a few examples per operation, one worker, two minutes at most for the whole run.
SCHEMATHESIS = [
    "--phases=examples,coverage,fuzzing,stateful",
    "--checks=not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "use_after_free,ensure_resource_availability,ignored_auth,missing_required_header",
    # not unsupported_method: GET /codec/session is the codec's page for people (HTML, kept out
    # of the document on purpose) beside its documented POST; positive_data_acceptance: a
    # well-formed period outside the open window is refused by design (the window moves daily).
    "--max-examples=3",
    "--max-time=90",
    "--request-timeout=10",
    "--workers=1",
    "--seed=13",
    "--no-shrink",
    "--suppress-health-check=all",
]


@pytest.fixture(scope="module")
async def api_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    base = tmp_path_factory.mktemp("contract")
    port = free_port()
    hooks = f"http://127.0.0.1:{port}/v1/webhooks"
    sims = {
        name: start_simulator(
            f"simulators.{name}", base / f"{name}.sqlite", base / f"{name}.log", "--webhook-url", f"{hooks}/{name}"
        )
        for name in ("salesforce", "netsuite")
    }
    # The reporting hub too, so the reporting routes are exercised rather than answering 503.
    pg_base = Path(tempfile.mkdtemp(prefix="d2r-contract-pg-"))
    start_embedded_postgres(pg_base / "pg", database="postgres")
    dsn = f"postgresql://postgres:@/postgres?host={pg_base / 'pg'}"
    await migrate_async(dsn)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    queues = {f"{q}_task_queue": f"st-{q}" for q in ("workflow", "crm", "psa", "erp")}
    settings = WorkerSettings(
        **queues,
        salesforce=VendorEndpoint(url=sims["salesforce"].url),
        erp_instances={"default": VendorEndpoint(url=sims["netsuite"].url)},
        hub_database_url=dsn,
        reporting_task_queue="st-reporting",
    )
    try:
        async with AsyncExitStack() as exits:
            acts = await build_activities(settings, exits)
            await start_workers(env.client, settings, activities_by_role(acts), exits)
            api_settings = ApiSettings(
                **queues,
                salesforce=VendorEndpoint(url=sims["salesforce"].url),
                database_url=dsn,
                codec_keys={k: base64.b64encode(v).decode() for k, v in TEST_KEY_RING.keys.items()},
                codec_current_key=TEST_KEY_RING.current,
                reporting_task_queue="st-reporting",
                api_tokens={TOKEN: TokenGrant(subject="schemathesis", roles=sorted(ROLES))},
            )
            app = create_app(api_settings, temporal=env.client)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.05)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
                await serving
    finally:
        await env.shutdown()
        stop_embedded_postgres(pg_base / "pg", discard=True)
        shutil.rmtree(pg_base, ignore_errors=True)
        for sim in sims.values():
            sim.process.terminate()
            sim.process.wait(timeout=10)


async def test_schemathesis_finds_no_server_error_and_no_contract_violation(api_url: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{api_url}/openapi.json",
        f"--header=Authorization: Bearer {TOKEN}",
        *SCHEMATHESIS,
        cwd=tmp_path,  # its .schemathesis cache stays out of the tree
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    output = out.decode(errors="replace")
    report = Path(os.environ.get("D2R_SCHEMATHESIS_REPORT", tmp_path / "schemathesis.txt"))
    await asyncio.to_thread(report.write_text, output)  # the whole run, for whoever debugs a failure
    assert process.returncode == 0, output[-12000:]
    counts = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert counts is not None, output[-4000:]
    assert int(counts[3]) == int(counts[2]) > 20, counts[0]  # every operation was exercised
