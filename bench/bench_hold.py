"""How many open engagements one worker holds: RSS per engagement and engagement GET at N open.

Cheaper than bench/bench_scale.py at 10,000: the CRM, PSA and ERP are stateless fakes in a
process of their own (by activity name, answering at once with payloads of a one-line T&M
deal's weight), so provisioning is bound by the workflow worker alone. The workflow worker is
the shipped one (`workers.main.run` with `D2R_ROLES=workflows`, its sizing and sandbox from
settings), on a Temporal dev server with the tests' payload codec.

1. warms the worker up with `--warmup` engagements, then reads its RSS (the baseline);
2. starts `--engagements N` engagements (Closed Won to IN_DELIVERY, where they wait for
   their month-end), printing RSS as they settle;
3. reads RSS again: (RSS - baseline) / N is what an open engagement costs;
4. GETs `--queries` engagements through the API (in this process) for p50 / p99.

The last line printed is one JSON object. `--profile` also writes the worker's Python heap
growth (tracemalloc by file and line, and object counts by type) from baseline to N open,
to see where the memory goes (slow: use a few hundred).

    nice -n 10 .venv/bin/python -m bench.bench_hold --engagements 10000 [--sandbox strict]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import search_attributes as sa
from contracts.crm import ReadOpportunityInput, WriteLinksInput, WriteLinksResult
from contracts.engagement import EngagementInput
from contracts.erp import (
    CreateSalesOrderInput,
    CreateSalesOrderResult,
    UpsertCustomerInput,
    UpsertCustomerResult,
)
from contracts.ids import engagement_workflow_id
from contracts.psa import CreateProjectInput
from contracts.queues import TaskQueues
from domain.deal import AccountNode, OpportunityLineSnapshot, OpportunitySnapshot
from domain.system_records import ProjectRef
from simulators.demo_data import BILL_RATES, LEGAL_ENTITIES
from tests.conftest import TEST_CODEC_ENV, TEST_CONVERTER, wheel_binary
from workers.devstack import dynamic_config_flags
from workflows.engagement import EngagementWorkflow

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = ("US01", "UK01", "DE01", "JP01")
ROLE = "Senior Consultant"
READER = {"Authorization": "Bearer bench-reader"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the fake systems (their own process) ------------------------------------------------
def opportunity(opportunity_id: str) -> OpportunitySnapshot:
    """A deal like bench_scale's: one T&M line of 200 h, one account, an entity by the id."""
    entity = ENTITIES[int(opportunity_id[-6:-3], 16) % len(ENTITIES)]
    currency, country, _name, region = LEGAL_ENTITIES[entity]
    rate = Decimal(BILL_RATES[currency][ROLE])
    return OpportunitySnapshot(
        opportunity_id=opportunity_id,
        name=f"Scale deal {opportunity_id[-6:]}",
        stage="Closed Won",
        amount=Decimal(200) * rate,
        currency=currency,
        close_date=date(2026, 10, 26),
        legal_entity=entity,
        billing_terms="Net 30",
        delivery_region=region,
        service_package="ADVISORY-TM",
        contract_start=date(2026, 11, 1),
        contract_end=date(2027, 10, 31),
        accounts=[
            AccountNode(
                account_id="001" + opportunity_id[3:], name=f"Scale Customer {opportunity_id[-6:]}", country=country
            )
        ],
        lines=[
            OpportunityLineSnapshot(
                line_id="00k" + opportunity_id[3:],
                name="Advisory, T&M",
                product_code="CONS-TM",
                quantity=Decimal(200),
                unit_price=rate,
                total_price=Decimal(200) * rate,
                billing_model="time_and_materials",
                revenue_method="as_delivered",
                role=ROLE,
                hours=Decimal(200),
            )
        ],
    )


@activity.defn(name="crm.read_opportunity")
async def read_opportunity(data: ReadOpportunityInput) -> OpportunitySnapshot:
    return opportunity(data.opportunity_id)


@activity.defn(name="erp.upsert_customer")
async def upsert_customer(data: UpsertCustomerInput) -> UpsertCustomerResult:
    return UpsertCustomerResult(erp_customer_id="CUST-" + data.engagement.customer.customer_id[-8:])


@activity.defn(name="psa.create_project")
async def create_project(data: CreateProjectInput) -> ProjectRef:
    return ProjectRef(project_id="a0P" + data.engagement.opportunity_id[3:])


@activity.defn(name="erp.create_sales_order")
async def create_sales_order(data: CreateSalesOrderInput) -> CreateSalesOrderResult:
    return CreateSalesOrderResult(sales_order_id="SO-" + data.engagement.opportunity_id[-8:])


@activity.defn(name="crm.write_links")
async def write_links(data: WriteLinksInput) -> WriteLinksResult:
    return WriteLinksResult(opportunity_id=data.opportunity_id, status=data.status)


async def serve_systems(address: str, queues: TaskQueues) -> None:
    client = await Client.connect(address, data_converter=TEST_CONVERTER)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    by_queue: dict[str, list[Any]] = {
        queues.crm: [read_opportunity, write_links],
        queues.psa: [create_project],
        queues.erp: [upsert_customer, create_sales_order],
    }
    async with AsyncExitStack() as stack:
        for queue, acts in by_queue.items():
            await stack.enter_async_context(
                Worker(client, task_queue=queue, activities=acts, max_concurrent_activities=200)
            )
        await stop.wait()


# ---- the workflow worker (the shipped one, with a profiling hook) ------------------------
class HeapReport:
    """On SIGUSR1: the first time, a baseline; the second, the growth since, to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.baseline: tracemalloc.Snapshot | None = None
        self.types: Counter[str] = Counter()

    @staticmethod
    def _types() -> Counter[str]:
        return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())

    def take(self) -> None:
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        if self.baseline is None:
            self.baseline, self.types = snapshot, self._types()
            self.path.write_text("baseline\n")
            return
        rss = psutil.Process().memory_info().rss
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # what RSS is freed memory the allocator kept
        trimmed = psutil.Process().memory_info().rss
        lines = [
            f"rss_mib {rss / 2**20:.1f}; after malloc_trim {trimmed / 2**20:.1f}",
            f"python heap traced now {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB, grown by "
            f"{sum(s.size_diff for s in snapshot.compare_to(self.baseline, 'filename')) / 2**20:.1f} MiB",
            "",
            "growth by file:",
        ]
        for stat in snapshot.compare_to(self.baseline, "filename")[:25]:
            lines.append(
                f"  {stat.size_diff / 1024:10.1f} KiB {stat.count_diff:8d} blocks  {stat.traceback[0].filename}"
            )
        lines += ["", "growth by line:"]
        for stat in snapshot.compare_to(self.baseline, "lineno")[:60]:
            frame = stat.traceback[0]
            lines.append(f"  {stat.size_diff / 1024:10.1f} KiB {stat.count_diff:8d}  {frame.filename}:{frame.lineno}")
        lines += ["", "growth by traceback (top 15, 8 frames):"]
        for stat in snapshot.compare_to(self.baseline, "traceback")[:15]:
            lines.append(f"  {stat.size_diff / 1024:10.1f} KiB {stat.count_diff:8d}")
            lines += [f"      {f.filename}:{f.lineno}" for f in stat.traceback[-8:]]
        lines += ["", "objects by type (growth):"]
        grown = self._types() - self.types
        lines += [f"  {count:8d}  {name}" for name, count in grown.most_common(60)]
        self.path.write_text("\n".join(lines) + "\n")


def trim() -> None:
    """Give the allocator's free memory back (how much of RSS is slack, not live objects)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def serve_workflows() -> None:
    from security import redact
    from workers.main import run
    from workers.settings import WorkerSettings

    profile = os.environ.get("D2R_BENCH_PROFILE")
    if profile:
        tracemalloc.start(8)
    redact.install()
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if profile:
            report = HeapReport(Path(profile))
            loop.add_signal_handler(signal.SIGUSR1, report.take)
        loop.add_signal_handler(signal.SIGUSR2, trim)
        await run(WorkerSettings(), stop)

    asyncio.run(main())


# ---- the driver ---------------------------------------------------------------------------
def rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


async def _started(client: Client, ids: list[str], queue: str, queues: TaskQueues, concurrency: int = 32) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(opp: str) -> None:
        async with gate:
            await client.start_workflow(
                EngagementWorkflow.run,
                EngagementInput(opportunity_id=opp, queues=queues),
                id=engagement_workflow_id(opp),
                task_queue=queue,
            )

    await asyncio.gather(*(one(o) for o in ids))


async def _in_delivery(client: Client, target: int, worker: psutil.Process, within: float) -> None:
    deadline, last = time.monotonic() + within, -1
    # running only: a run that continued as new keeps its last stage in visibility
    query = (
        "WorkflowType = 'EngagementWorkflow' AND ExecutionStatus = 'Running' "
        "AND D2RStage IN ('IN_DELIVERY', 'NEEDS_ATTENTION')"
    )
    while time.monotonic() < deadline:
        done = (await client.count_workflows(query)).count
        if done >= target:
            return
        if done // 500 != last // 500 or last < 0:
            log(f"  in delivery: {done}/{target}, worker RSS {rss_mib(worker):.0f} MiB")
        last = done
        await asyncio.sleep(2.0)
    raise RuntimeError(f"{target} engagements not in delivery within {within:.0f}s")


async def _settled(worker: psutil.Process, within: float = 300) -> None:
    """Until the worker is idle (under 10 % of a core for 2 s): its last workflow tasks are done."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = sum(worker.cpu_times()[:2])
        await asyncio.sleep(2.0)
        if sum(worker.cpu_times()[:2]) - before < 0.2:
            return


async def _api(exits: AsyncExitStack, client: Client, queue: str, queues: TaskQueues) -> httpx.AsyncClient:
    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings(
        workflow_task_queue=queue,
        crm_task_queue=queues.crm,
        psa_task_queue=queues.psa,
        erp_task_queue=queues.erp,
        static_tokens=True,
        rate_limit="1000000/minute",
        api_tokens={"bench-reader": {"subject": "rita", "roles": ["auditor"]}},
    )
    app = create_app(settings, temporal=client)
    await exits.enter_async_context(app.router.lifespan_context(app))
    return await exits.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60)
    )


SOURCES: Counter[str] = Counter()  # where the GETs' views came from (X-D2R-View-Source)


async def get_latency(api: httpx.AsyncClient, ids: list[str], sample: int) -> tuple[float, float, float, int]:
    """p50, p99, max and how many GETs failed (a 503 when the engagement did not answer in
    the API's query timeout: counted at the time it took, and reported, not hidden)."""
    times, failed = [], 0
    SOURCES.clear()
    for opp in random.Random(7).sample(ids, min(sample, len(ids))):
        t0 = time.perf_counter()
        response = await api.get(f"/v1/engagements/{opp}", headers=READER)
        times.append((time.perf_counter() - t0) * 1000)
        SOURCES[response.headers.get("x-d2r-view-source", "none")] += 1
        if response.status_code == 503:
            failed += 1
            log(f"  GET engagement {opp}: {response.status_code} {response.text[:200]}")
        elif response.status_code != 200 or response.json().get("stage") != "IN_DELIVERY":
            raise RuntimeError(f"GET engagement {opp}: {response.status_code} {response.text[:300]}")
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.99 * (len(times) - 1)))], times[-1], failed


def _opportunity_ids(tag: str, count: int, offset: int = 0) -> list[str]:
    return [f"006{tag}{i + offset:09X}"[:18].ljust(18, "A") for i in range(count)]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="d2r-bench-hold-"))
    tag = uuid.uuid4().hex[:6].upper()
    queue = f"hold-wf-{tag}"
    queues = TaskQueues(crm=f"hold-crm-{tag}", psa=f"hold-psa-{tag}", erp=f"hold-erp-{tag}")
    log(f"bench_hold: {args.engagements} engagements in one worker ({args.sandbox}); logs in {tmp}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
        dev_server_extra_args=dynamic_config_flags(),
    )
    procs: list[subprocess.Popen[bytes]] = []
    address = env.client.service_client.config.target_host
    heap = tmp / "heap.txt"
    worker_env = {
        **os.environ,
        **TEST_CODEC_ENV,
        "D2R_TEMPORAL_ADDRESS": address,
        "D2R_ROLES": "workflows",
        "D2R_WORKFLOW_TASK_QUEUE": queue,
        "D2R_CRM_TASK_QUEUE": queues.crm,
        "D2R_PSA_TASK_QUEUE": queues.psa,
        "D2R_ERP_TASK_QUEUE": queues.erp,
        "D2R_DEPLOYMENT_NAME": f"hold-{tag}",
        "D2R_BUILD_ID": "b1",
        "D2R_SET_CURRENT_VERSION": "always",
        "D2R_OTEL_EXPORTER": "none",
        "D2R_WORKFLOW_LIMITS__SANDBOX": args.sandbox,
        **({"D2R_BENCH_PROFILE": str(heap)} if args.profile else {}),
    }

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = (tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=worker_env)
        procs.append(process)
        return process

    try:
        start(
            "systems", [sys.executable, "-m", "bench.bench_hold", "--serve-systems", address, queues.model_dump_json()]
        )
        wf = start("worker", [sys.executable, "-m", "bench.bench_hold", "--serve-workflows"])
        worker = psutil.Process(wf.pid)
        client = env.client
        async with AsyncExitStack() as exits:
            api = await _api(exits, client, queue, queues)
            warm = _opportunity_ids(tag, args.warmup, offset=0)
            deadline = time.monotonic() + 120
            while True:  # the version is current once the worker polls; until then starts are refused
                try:
                    await _started(client, warm[:1], queue, queues)
                    break
                except Exception as error:  # only while the worker comes up
                    if time.monotonic() > deadline or wf.poll() is not None:
                        raise RuntimeError(f"the worker did not come up: see {tmp}/worker.log") from error
                    await asyncio.sleep(1.0)
            await _started(client, warm[1:], queue, queues)
            await _in_delivery(client, len(warm), worker, within=300)
            await _settled(worker)
            await get_latency(api, warm, len(warm))  # the API's first calls warm up too
            if args.profile:
                worker.send_signal(signal.SIGUSR1)
                await asyncio.sleep(5)
            baseline = rss_mib(worker)
            log(f"warm ({len(warm)} engagements): worker RSS {baseline:.1f} MiB")
            ids = _opportunity_ids(tag, args.engagements, offset=args.warmup)
            t0 = time.perf_counter()
            await _started(client, ids, queue, queues)
            await _in_delivery(client, len(warm) + len(ids), worker, within=600 + 2 * len(ids))
            provision_s = time.perf_counter() - t0
            await _settled(worker)
            held = rss_mib(worker)
            cpu = worker.cpu_times()
            log(f"{len(ids)} open: worker RSS {held:.1f} MiB; GET x {args.queries}")
            p50, p99, worst, failed = await get_latency(api, ids, args.queries)
            after_gets = rss_mib(worker)
            get_cpu = worker.cpu_times()
            worker.send_signal(signal.SIGUSR2)
            await asyncio.sleep(3)
            trimmed = rss_mib(worker)
            if args.profile:
                worker.send_signal(signal.SIGUSR1)
                for _ in range(600):  # a snapshot of a large heap takes a while
                    await asyncio.sleep(1.0)
                    if heap.read_text() != "baseline\n":
                        break
                log(heap.read_text())
            load = os.getloadavg()
    finally:
        for process in procs:
            process.send_signal(signal.SIGTERM)
        for process in procs:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await env.shutdown()
    return {
        "engagements": len(ids),
        "warmup": len(warm),
        "sandbox": args.sandbox,
        "worker_rss_warm_mib": round(baseline, 1),
        "worker_rss_held_mib": round(held, 1),
        "worker_rss_after_gets_mib": round(after_gets, 1),
        # after a gc and malloc_trim: the part of RSS that is the allocator's free memory
        "worker_rss_trimmed_mib": round(trimmed, 1),
        "worker_rss_kib_per_engagement": round((held - baseline) * 1024 / len(ids), 1),
        "engagements_per_gib": int(1024 / ((held - baseline) / len(ids))) if held > baseline else None,
        "worker_cpu_s": round(cpu.user + cpu.system, 1),
        "provision_per_s": round(len(ids) / provision_s, 2),
        "query_p50_ms": round(p50, 1),
        "query_p99_ms": round(p99, 1),
        "query_max_ms": round(worst, 1),
        "queries": min(args.queries, len(ids)),
        "queries_failed": failed,
        # "published": read from the view the engagement published; "query": asked of the worker
        "query_sources": dict(SOURCES),
        # the worker's CPU per GET (replaying the evicted ones): what load does not inflate
        "worker_cpu_per_query_ms": round(
            (get_cpu.user + get_cpu.system - cpu.user - cpu.system) * 1000 / min(args.queries, len(ids)), 1
        ),
        "load_average": [round(x, 1) for x in load],
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engagements", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50, help="engagements before the baseline is read")
    parser.add_argument("--queries", type=int, default=500, help="engagement GETs for the latency figure")
    parser.add_argument("--sandbox", choices=["passthrough", "strict", "none"], default="passthrough")
    parser.add_argument("--profile", action="store_true", help="the worker's heap growth by line and type")
    parser.add_argument("--serve-systems", nargs=2, metavar=("ADDRESS", "QUEUES"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-workflows", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.serve_systems:
        address, queues = args.serve_systems
        asyncio.run(serve_systems(address, TaskQueues.model_validate_json(queues)))
    elif args.serve_workflows:
        serve_workflows()
    else:
        print(json.dumps(asyncio.run(run(args)), sort_keys=True), flush=True)
        # Everything it started is stopped; the SDK's core threads can still call into Python
        # while the interpreter finalizes (a fatal "PyGILState_Release" at exit), so leave now.
        os._exit(0)


if __name__ == "__main__":
    main()
