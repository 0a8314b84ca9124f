"""Posting throughput at period close, Temporal vs a plain asyncio script, and the
Temporal Actions it costs; plus the engagement history size after a 12-period year.

Starts two identical simulator pairs (Salesforce with the bench seed: `3 x projects`
opportunities, so `projects` closed-won projects, and `entries` approved timecards
spread over them; NetSuite with the demo seed), then

1. d2r: the Temporal dev server and one worker process's workers (in the side's process,
   plus N - 1 processes on the ERP queue with `--workers N`), one
   TimeAndExpensePostingWorkflow per legal entity (US01, UK01, DE01, JP01) with the
   period's cut-off, all four at once — entries/s from start to the last result;
2. baseline: the same HTTP calls (the same connector code, page by page, four entities
   at once, the same ERP concurrency, and each run's receivables sweep) from a plain
   asyncio loop, with no durability;

and prints entries/s for both, the ratio (issue 14's goal: >= 1.0), and Temporal Actions per 1,000
entries (goal <= 5), counted from the histories per Temporal Cloud's definition (see
bench/bench_engagement_actions.py) plus the activity heartbeats that reach the server
(not in the history: estimated as 1 + page time / (0.8 x heartbeat timeout), the
SDK's throttle). Then it runs bench.bench_engagement_actions for the 12-period year.

Each side runs in a fresh process of its own (neither inherits the other's warm caches, and
its CPU is its own), and each round prints both sides' entries/s and their CPU per entry:
every CPU second the side spent while it ran (its process, d2r's dev server, its two
simulators). On a shared machine the first moves with the load; the second much less.

`--rounds N` repeats on fresh simulator pairs, alternating which side goes first, and
prints every round's ratio, the median and the lowest. `--together` starts both sides at
the same moment instead, each on its own simulators, so both see the same background load
(and share the machine). `--sides plain,plain` (or `d2r,d2r`) runs the same side twice:
the ratio is then the machine's noise alone. `--workers N` spreads d2r's posting pages
over N worker processes with the ERP concurrency split between them (the ERP sees no more
calls in flight than from the plain script). `--sides d2r` alone is for a profiler:

    .venv/bin/python -m bench.bench_posting [--projects 1000] [--entries 100000] [--rounds 1]
        [--together] [--sides d2r,plain] [--workers 1]
    py-spy record --subprocesses -o posting.svg -- .venv/bin/python -m bench.bench_posting --sides d2r ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from bench.bench_engagement_actions import BILLABLE, is_action
from bench.bench_engagement_actions import main as engagement_year
from contracts import search_attributes as sa
from contracts.erp import OpenItemsInput
from contracts.posting import PostingConfig, PostingInput, PostPageInput
from simulators.devkeys import ensure_dev_keys
from tests.conftest import TEST_CONVERTER, wheel_binary
from workers.composition import build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import QueueLimits, VendorEndpoint, WorkerSettings
from workflows.posting import TimeAndExpensePostingWorkflow

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = ["US01", "UK01", "DE01", "JP01"]
CUTOFF = date(2026, 11, 30)
HEARTBEAT_SECONDS = 60
Go = Callable[[], Awaitable[None]]  # a side's setup is done: wait for the word to start the clock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(module: str, db: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--db", str(db), "--quiet", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    SIMULATOR_PIDS.add(process.pid)
    return process, f"http://127.0.0.1:{port}"


def wait(url: str, process: subprocess.Popen[bytes], within: float = 600) -> None:
    port = int(url.rsplit(":", 1)[1])
    deadline = time.time() + within
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("simulator did not start")


def settle(processes: list[subprocess.Popen[bytes]], within: float = 180) -> float:
    """Wait until the simulators are idle: a freshly seeded one keeps working for a while
    after it answers (measured: the side that ran first took 2-4x as long), so whichever
    side ran first would pay for it. Returns the seconds waited."""
    watched = [psutil.Process(p.pid) for p in processes]
    t0 = time.perf_counter()
    for w in watched:
        w.cpu_percent(interval=None)  # the first call starts the measurement
    quiet = 0
    while quiet < 2 and time.perf_counter() - t0 < within:
        time.sleep(1.0)
        busy = max(w.cpu_percent(interval=None) for w in watched)
        quiet = quiet + 1 if busy < 5 else 0
    return time.perf_counter() - t0


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


SIMULATOR_PIDS: set[int] = set()  # every simulator this script started (not d2r's dev server)


def dev_server_cpu() -> float:
    """CPU seconds of what this process started besides the simulators: the dev server."""
    return cpu_seconds([c for c in psutil.Process().children(recursive=True) if c.pid not in SIMULATOR_PIDS])


def settings_for(sf: str, ns: str, concurrency: int, tag: str, roles: str | None = None) -> WorkerSettings:
    return WorkerSettings(
        **({"roles": roles} if roles else {}),
        workflow_task_queue=f"bp-wf-{tag}",
        crm_task_queue=f"bp-crm-{tag}",
        psa_task_queue=f"bp-psa-{tag}",
        erp_task_queue=f"bp-erp-{tag}",
        salesforce=VendorEndpoint(url=sf, timeout_seconds=120),
        erp_instances={"default": VendorEndpoint(url=ns, timeout_seconds=120)},
        erp_limits=QueueLimits(max_concurrent=concurrency, max_per_second=None),
    )


async def run_temporal(
    sf: str, ns: str, concurrency: int, page: int, mode: str, go: Go, workers: int = 1
) -> tuple[int, float, dict[str, object]]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    # With more worker processes the ERP concurrency is shared out, so the ERP sees no more
    # calls in flight than from the plain script: the pages only spread over more cores.
    shares = [concurrency // workers + (1 if n < concurrency % workers else 0) for n in range(workers)]
    settings = settings_for(sf, ns, shares[0], "t")
    slots = erp_slots(settings, workers)
    from contracts.queues import TaskQueues

    queues = TaskQueues(crm=settings.crm_task_queue, psa=settings.psa_task_queue, erp=settings.erp_task_queue)
    address = env.client.service_client.config.target_host
    helpers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bench.bench_posting", "--erp-worker", address, "--sf", sf, "--ns", ns),
            *("--concurrency", str(share), "--workers", str(workers)),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for share in shares[1:]
    ]
    for helper in helpers:
        assert helper.stdout is not None
        while (line := (await helper.stdout.readline()).decode()) and not line.startswith(READY):
            pass
    async with AsyncExitStack() as stack:
        acts = await build_activities(settings, stack, env.client)
        await start_workers(env.client, slots, activities_by_role(acts), stack)
        await go()
        cpu0, server0 = time.process_time(), dev_server_cpu()
        helpers_cpu0 = cpu_seconds([psutil.Process(h.pid) for h in helpers])
        t0 = time.perf_counter()
        t_wall = time.time()
        handles = [
            await env.client.start_workflow(
                TimeAndExpensePostingWorkflow.run,
                PostingInput(
                    legal_entity=entity,
                    posting_date=CUTOFF,
                    cutoff=CUTOFF,
                    queues=queues,
                    config=PostingConfig(projects_per_page=page, time_mode=mode),
                    heartbeat_seconds=HEARTBEAT_SECONDS,
                ),
                id=f"posting-{entity}-{CUTOFF}",
                task_queue=settings.workflow_task_queue,
            )
            for entity in ENTITIES
        ]
        results = [await h.result() for h in handles]
        elapsed = time.perf_counter() - t0
        server_cpu = dev_server_cpu() - server0  # the helpers are children too: counted below
        helpers_cpu = cpu_seconds([psutil.Process(h.pid) for h in helpers]) - helpers_cpu0
        cpu, server_cpu = time.process_time() - cpu0 + helpers_cpu, server_cpu - helpers_cpu
        for helper in helpers:
            assert helper.stdin is not None
            helper.stdin.close()  # the helper stops at the end of its stdin
        kinds: Counter[str] = Counter()
        events = 0
        size = 0
        heartbeats = 0
        for h in handles:
            history = await h.fetch_history()
            events += len(history.events)
            size += len(history.to_json().encode())
            started: dict[int, float] = {}
            for event in history.events:
                if is_action(event):
                    kinds[BILLABLE[event.event_type]] += 1
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    kinds["activity retries"] += max(0, event.activity_task_started_event_attributes.attempt - 1)
                    started[event.activity_task_started_event_attributes.scheduled_event_id] = (
                        event.event_time.ToDatetime().timestamp()
                    )
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    attrs = event.activity_task_completed_event_attributes
                    seconds = event.event_time.ToDatetime().timestamp() - started.get(attrs.scheduled_event_id, 0)
                    # the first heartbeat goes out at once, then at most one per throttle interval
                    heartbeats += 1 + math.floor(seconds / (0.8 * HEARTBEAT_SECONDS))
        kinds["heartbeats reaching the server (est.)"] = heartbeats
        # where the run's wall time went, per entity: waiting for the first page to start,
        # and the pages themselves (the rest is workflow tasks and the receivables sweep)
        for h in handles:
            events_of = (await h.fetch_history()).events
            t_start = events_of[0].event_time.ToDatetime().timestamp()
            pages = [
                e.event_time.ToDatetime().timestamp()
                for e in events_of
                if e.event_type
                in (EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
            ]
            t_end = events_of[-1].event_time.ToDatetime().timestamp()
            print(
                f"  {h.id}: started {t_start - t_wall:.1f} s after t0, first page {pages[0] - t_start:.1f} s "
                f"later, activities {pages[-1] - pages[0]:.1f} s, run {t_end - t_start:.1f} s"
            )
    for helper in helpers:
        await helper.wait()
    await env.shutdown()
    entries = sum(r.progress.time_entries for r in results)
    exceptions = sum(r.progress.exceptions_total for r in results)
    return (
        entries,
        elapsed,
        {
            "kinds": dict(kinds),
            "cpu": cpu,
            "dev_server_cpu": server_cpu,
            "events": events,
            "bytes": size,
            "exceptions": exceptions,
            "pages": sum(r.progress.page + 1 for r in results),
            "pages_by_worker": sorted(sum((Counter(r.progress.pages_by_worker) for r in results), Counter()).values()),
        },
    )


def erp_slots(settings: WorkerSettings, workers: int) -> WorkerSettings:
    """With more than one worker process, each takes an equal share of the entities' pages
    (at most this many at once), so no process sits idle while another holds two pages'
    calls behind its share of the concurrency. The connectors keep their share regardless."""
    if workers == 1:
        return settings
    share = math.ceil(len(ENTITIES) / workers)
    return settings.model_copy(update={"erp_limits": settings.erp_limits.model_copy(update={"max_concurrent": share})})


async def run_baseline(
    sf: str, ns: str, concurrency: int, page: int, mode: str, go: Go
) -> tuple[int, float, dict[str, object]]:
    settings = settings_for(sf, ns, concurrency, "b")
    async with AsyncExitStack() as stack:
        acts = await build_activities(settings, stack)
        assert acts.posting is not None and acts.erp_billing is not None
        posting = acts.posting

        async def entity_run(entity: str) -> int:
            after, n, total = "", 0, 0
            while True:
                result = await posting._post_page(
                    PostPageInput(
                        run_id=f"baseline-{entity}",
                        page=n,
                        legal_entity=entity,
                        cutoff=CUTOFF,
                        posting_date=CUTOFF,
                        after_project=after,
                        config=PostingConfig(projects_per_page=page, time_mode=mode),
                    )
                )
                total += result.time_entries
                if result.next_project is None:
                    break
                after, n = result.next_project, n + 1
            # the run's last step, as TimeAndExpensePostingWorkflow does it: invoices that fell
            # due the day before and are still open (no engagement runs here to be told)
            day = CUTOFF - timedelta(days=1)
            await acts.erp_billing.open_items_due(OpenItemsInput(legal_entity=entity, due_from=day, due_to=day))
            return total

        await go()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(entity_run(e) for e in ENTITIES))
        elapsed = time.perf_counter() - t0
        return sum(counts), elapsed, {"cpu": time.process_time() - cpu0, "dev_server_cpu": 0.0}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- one side in its own process -------------------------------------------------------------
# Each side runs in a fresh process: neither inherits the other's warm caches or leftover
# tasks, its CPU is its own, and with --together both can run at the same moment.

READY, RESULT = "READY", "RESULT "


async def side_process(args: argparse.Namespace) -> None:
    """`--run-side`: set up, say READY, wait for a line on stdin, run, print the RESULT."""

    async def go() -> None:
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.readline)

    if args.run_side == "d2r":
        entries, seconds, info = await run_temporal(
            args.sf, args.ns, args.concurrency, args.projects_per_page, args.time_mode, go, args.workers
        )
    else:
        entries, seconds, info = await run_baseline(
            args.sf, args.ns, args.concurrency, args.projects_per_page, args.time_mode, go
        )
    print(RESULT + json.dumps({"entries": entries, "seconds": seconds, **info}), flush=True)


async def erp_worker(args: argparse.Namespace) -> None:
    """`--erp-worker ADDRESS`: one more worker process on the d2r side's ERP queue (posting
    pages, the receivables sweep), until its stdin closes."""
    from temporalio.client import Client

    settings = settings_for(args.sf, args.ns, args.concurrency, "t", roles="erp")
    client = await Client.connect(args.erp_worker, data_converter=TEST_CONVERTER)
    async with AsyncExitStack() as stack:
        acts = await build_activities(settings, stack, client)
        await start_workers(client, erp_slots(settings, args.workers), activities_by_role(acts), stack)
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.read)


class Side:
    """A side's process, its simulator pair and what it reported."""

    def __init__(self, label: str, kind: str, sims: list[subprocess.Popen[bytes]], sf: str, ns: str) -> None:
        self.label, self.kind, self.sims, self.sf, self.ns = label, kind, sims, sf, ns
        self.proc: asyncio.subprocess.Process | None = None
        self.result: dict[str, Any] = {}
        self.load_before = self.load_after = ""
        self.sim_cpu = 0.0

    async def spawn(self, args: argparse.Namespace) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_posting",
            "--run-side",
            self.kind,
            "--sf",
            self.sf,
            "--ns",
            self.ns,
            "--concurrency",
            str(args.concurrency),
            "--projects-per-page",
            str(args.projects_per_page),
            "--time-mode",
            args.time_mode,
            "--workers",
            str(args.workers),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        await self._read_until(READY)

    async def _read_until(self, marker: str) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            if line.startswith(marker):
                return line
            if line.strip() and not line.startswith("Temporal"):  # not the dev server banner
                print(f"  [{self.label}] {line.rstrip()}")
        raise RuntimeError(f"{self.label} exited with {await self.proc.wait()} before {marker.strip()}")

    async def run(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        watched = [psutil.Process(p.pid) for p in self.sims]
        self.load_before, sim0 = load(), cpu_seconds(watched)
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        self.result = json.loads((await self._read_until(RESULT))[len(RESULT) :])
        self.load_after, self.sim_cpu = load(), cpu_seconds(watched) - sim0
        await self.proc.wait()

    @property
    def rate(self) -> float:
        return float(self.result["entries"]) / float(self.result["seconds"])

    @property
    def cpu(self) -> float:
        """Every CPU second the side spent while it ran: its process (the connector code, and
        for d2r the worker), the dev server, its simulators."""
        return float(self.result["cpu"]) + float(self.result["dev_server_cpu"]) + self.sim_cpu

    def report(self) -> None:
        r = self.result
        what = "d2r on Temporal" if self.kind == "d2r" else "plain asyncio, same HTTP calls"
        extra = (
            f", {r['pages']} pages ({'+'.join(map(str, r['pages_by_worker']))} by worker), {r['exceptions']} exceptions"
            if self.kind == "d2r"
            else ""
        )
        print(
            f"{self.label} ({what}): {r['entries']:,} entries in {r['seconds']:.1f} s = {self.rate:,.0f} entries/s"
            f"{extra}; CPU {self.cpu:.1f} s = {1000 * self.cpu / max(r['entries'], 1):.2f} ms per entry (process "
            f"{r['cpu']:.1f} s, dev server {r['dev_server_cpu']:.1f} s, simulators {self.sim_cpu:.1f} s); "
            f"{self.load_before} before, {self.load_after} after"
        )


class RoundFigures(NamedTuple):
    wall: float  # first side's entries/s over the second's
    cpu: float  # second side's CPU per entry over the first's (> 1: the first spent less)


async def one_round(args: argparse.Namespace, tmp: Path, n: int) -> RoundFigures | None:
    """Each side once, each on its own freshly seeded simulator pair, in its own process."""
    seed = ["--seed", "bench", "--opportunities", str(args.projects * 3), "--time-entries", str(args.entries)]
    kinds = args.sides.split(",")
    sides: list[Side] = []
    for i, kind in enumerate(kinds):
        label = kind if kinds.count(kind) == 1 else f"{kind}#{i + 1}"
        sf, sf_url = start("simulators.salesforce", tmp / f"sf-{i}.sqlite", *seed)
        ns, ns_url = start("simulators.netsuite", tmp / f"ns-{i}.sqlite", "--seed", "demo")
        sides.append(Side(label, kind, [sf, ns], sf_url, ns_url))
    try:
        t0 = time.perf_counter()
        for s in sides:
            wait(s.sf, s.sims[0])
            wait(s.ns, s.sims[1])
        seeded = time.perf_counter() - t0
        every = [p for s in sides for p in s.sims]
        print(
            f"round {n + 1}: seeded {len(sides)} simulator pairs ({args.projects} projects, {args.entries:,} "
            f"timecards each) in {seeded:.0f} s, idle after {settle(every):.0f} s more"
        )
        if args.together:
            await asyncio.gather(*(s.spawn(args) for s in sides))
            await asyncio.gather(*(s.run() for s in sides))
        else:
            # alternate which side goes first: the machine's load moves between the two otherwise
            for s in sides if n % 2 or len(sides) == 1 else reversed(sides):
                await s.spawn(args)
                await s.run()
        for s in sides:
            s.report()
        d2r = next((s for s in sides if s.kind == "d2r"), None)
        if d2r is not None:
            print_actions(d2r.result)
        if len(sides) < 2:
            return None
        a, b = sides
        figures = RoundFigures(
            wall=a.rate / b.rate,
            cpu=(b.cpu / b.result["entries"]) / (a.cpu / a.result["entries"]),
        )
        print(f"round {n + 1}: {a.label} / {b.label} entries/s {figures.wall:.2f}; CPU per entry {figures.cpu:.2f}")
        return figures
    finally:
        for p in every:
            p.terminate()
        for p in every:
            p.wait(timeout=30)


def print_actions(r: dict[str, Any]) -> None:
    kinds: dict[str, int] = r["kinds"]
    actions = sum(kinds.values())
    print(
        f"Temporal Actions: {actions} for {r['entries']:,} entries = {1000 * actions / max(r['entries'], 1):.2f} "
        f"per 1,000 entries (goal <= 5)"
    )
    for name, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {count:5d}  {name}")
    print(f"posting histories: {r['events']} events, {r['bytes']:,} bytes (JSON) for 4 runs")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16, help="ERP calls in flight per worker")
    parser.add_argument("--projects-per-page", type=int, default=50)
    parser.add_argument(
        "--time-mode",
        choices=["journal", "time_bill"],
        default="journal",
        help="journal: one summarized journal per batch (the period-close setting); "
        "time_bill: one NetSuite time bill per entry",
    )
    parser.add_argument("--skip-year", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="rounds on fresh simulators, alternating the order")
    parser.add_argument(
        "--sides",
        default="d2r,plain",
        help="what to compare, first over second: d2r,plain (the benchmark), plain,plain or d2r,d2r "
        "(the machine's noise: the same side twice), or one side alone (to profile it)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="run the sides at the same moment (each on its own simulators) instead of one after "
        "the other: both see the same background load, and share the machine",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="d2r worker processes taking the posting pages (the ERP concurrency is split between them)",
    )
    parser.add_argument("--run-side", choices=["d2r", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--erp-worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--sf", help=argparse.SUPPRESS)
    parser.add_argument("--ns", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.erp_worker:
        await erp_worker(args)
        return
    if args.run_side:
        await side_process(args)
        return
    if not set(args.sides.split(",")) <= {"d2r", "plain"} or len(args.sides.split(",")) > 2:
        parser.error("--sides: one or two of d2r, plain")
    tmp = Path(tempfile.mkdtemp(prefix="d2r-bench-posting-"))
    ensure_dev_keys()  # the NetSuite login is a certificate-signed JWT (settings' default key)
    print(f"time posted as: {args.time_mode}; sides {args.sides}, {'together' if args.together else 'in turn'}")
    rounds: list[RoundFigures] = []
    for n in range(args.rounds):
        (tmp / f"round-{n}").mkdir()
        if (figures := await one_round(args, tmp / f"round-{n}", n)) is not None:
            rounds.append(figures)
    if rounds:
        wall = [f.wall for f in rounds]
        cpu = [f.cpu for f in rounds]
        print(
            f"{args.sides.replace(',', ' / ')} entries/s by round: {', '.join(f'{r:.2f}' for r in wall)}; "
            f"median {statistics.median(wall):.2f}, lowest {min(wall):.2f}"
        )
        print(
            f"CPU per entry, second over first, by round: {', '.join(f'{r:.2f}' for r in cpu)}; "
            f"median {statistics.median(cpu):.2f}"
        )
    if not args.skip_year:
        print()
        await engagement_year()


if __name__ == "__main__":
    asyncio.run(main())
