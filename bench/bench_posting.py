"""Posting throughput at period close, Temporal vs a plain asyncio script, and the
Temporal Actions it costs; plus the engagement history size after a 12-period year.

Starts two identical simulator pairs (Salesforce with the bench seed: `3 x projects`
opportunities, so `projects` closed-won projects, and `entries` approved timecards
spread over them; NetSuite with the demo seed), then

1. d2r: the Temporal dev server and one worker process's workers (in this process), one
   TimeAndExpensePostingWorkflow per legal entity (US01, UK01, DE01, JP01) with the
   period's cut-off, all four at once — entries/s from start to the last result;
2. baseline: the same HTTP calls (the same connector code, page by page, four entities
   at once, the same ERP concurrency, and each run's receivables sweep) from a plain
   asyncio loop, with no durability;

and prints entries/s for both, the ratio (goal >= 0.5), and Temporal Actions per 1,000
entries (goal <= 5), counted from the histories per Temporal Cloud's definition (see
bench/bench_engagement_actions.py) plus the activity heartbeats that reach the server
(not in the history: estimated as 1 + page time / (0.8 x heartbeat timeout), the
SDK's throttle). Then it runs bench.bench_engagement_actions for the 12-period year.

`--rounds N` repeats both sides on fresh simulator pairs, alternating which goes first
(the machine's load moves between the two otherwise), and prints each round's ratio, the
median, and the load average before and after each side.

    .venv/bin/python -m bench.bench_posting [--projects 1000] [--entries 100000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from bench.bench_engagement_actions import BILLABLE
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


def settings_for(sf: str, ns: str, concurrency: int, tag: str) -> WorkerSettings:
    return WorkerSettings(
        workflow_task_queue=f"bp-wf-{tag}",
        crm_task_queue=f"bp-crm-{tag}",
        psa_task_queue=f"bp-psa-{tag}",
        erp_task_queue=f"bp-erp-{tag}",
        salesforce=VendorEndpoint(url=sf, timeout_seconds=120),
        erp_instances={"default": VendorEndpoint(url=ns, timeout_seconds=120)},
        erp_limits=QueueLimits(max_concurrent=concurrency, max_per_second=None),
    )


async def run_temporal(
    sf: str, ns: str, concurrency: int, page: int, mode: str
) -> tuple[int, float, dict[str, object]]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    settings = settings_for(sf, ns, concurrency, "t")
    from contracts.queues import TaskQueues

    queues = TaskQueues(crm=settings.crm_task_queue, psa=settings.psa_task_queue, erp=settings.erp_task_queue)
    async with AsyncExitStack() as stack:
        acts = await build_activities(settings, stack, env.client)
        await start_workers(env.client, settings, activities_by_role(acts), stack)
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
                if event.event_type in BILLABLE:
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
        server_cpu = dev_server_cpu()
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
    await env.shutdown()
    entries = sum(r.progress.time_entries for r in results)
    exceptions = sum(r.progress.exceptions_total for r in results)
    return (
        entries,
        elapsed,
        {
            "kinds": kinds,
            "dev_server_cpu": server_cpu,
            "events": events,
            "bytes": size,
            "exceptions": exceptions,
            "pages": sum(r.progress.page + 1 for r in results),
        },
    )


async def run_baseline(sf: str, ns: str, concurrency: int, page: int, mode: str) -> tuple[int, float]:
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

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(entity_run(e) for e in ENTITIES))
        return sum(counts), time.perf_counter() - t0


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def one_round(args: argparse.Namespace, tmp: Path, baseline_first: bool) -> float:
    """Both sides once, each on its own freshly seeded simulator pair; returns d2r / baseline."""
    seed = ["--seed", "bench", "--opportunities", str(args.projects * 3), "--time-entries", str(args.entries)]
    procs = []
    urls: dict[str, str] = {}
    for side in ("t", "b"):
        p, urls[f"sf-{side}"] = start("simulators.salesforce", tmp / f"sf-{side}.sqlite", *seed)
        procs.append(p)
        p, urls[f"ns-{side}"] = start("simulators.netsuite", tmp / f"ns-{side}.sqlite", "--seed", "demo")
        procs.append(p)
    try:
        t0 = time.perf_counter()
        for p, key in zip(procs, ("sf-t", "ns-t", "sf-b", "ns-b"), strict=True):
            wait(urls[key], p)
        seeded = time.perf_counter() - t0
        print(
            f"seeded two simulator pairs ({args.projects} projects, {args.entries:,} timecards each) "
            f"in {seeded:.0f} s, idle after {settle(procs):.0f} s more"
        )

        def sims(side: str) -> list[psutil.Process]:
            return [
                psutil.Process(p.pid)
                for p, k in zip(procs, ("sf-t", "ns-t", "sf-b", "ns-b"), strict=True)
                if k.endswith(side)
            ]

        async def baseline() -> tuple[int, float]:
            before, cpu, sim = load(), time.process_time(), cpu_seconds(sims("b"))
            entries, seconds = await run_baseline(
                urls["sf-b"], urls["ns-b"], args.concurrency, args.projects_per_page, args.time_mode
            )
            print(
                f"baseline (plain asyncio, same HTTP calls): {entries:,} entries in {seconds:.1f} s = "
                f"{entries / seconds:,.0f} entries/s ({before} before, {load()} after; CPU: this process "
                f"{time.process_time() - cpu:.1f} s, simulators {cpu_seconds(sims('b')) - sim:.1f} s)"
            )
            return entries, seconds

        async def temporal() -> tuple[int, float, dict[str, object]]:
            before, cpu, sim = load(), time.process_time(), cpu_seconds(sims("t"))
            entries, seconds, info = await run_temporal(
                urls["sf-t"], urls["ns-t"], args.concurrency, args.projects_per_page, args.time_mode
            )
            print(
                f"d2r on Temporal: {entries:,} entries in {seconds:.1f} s = {entries / seconds:,.0f} entries/s "
                f"({info['pages']} pages, {info['exceptions']} exceptions; {before} before, {load()} after; "
                f"CPU: this process {time.process_time() - cpu:.1f} s, simulators "
                f"{cpu_seconds(sims('t')) - sim:.1f} s, dev server {info['dev_server_cpu']:.1f} s)"
            )
            return entries, seconds, info

        if baseline_first:
            b_entries, b_time = await baseline()
            t_entries, t_time, info = await temporal()
        else:
            t_entries, t_time, info = await temporal()
            b_entries, b_time = await baseline()
        ratio = (t_entries / t_time) / (b_entries / b_time)
        print(f"ratio d2r / baseline: {ratio:.2f} (goal >= 0.5)")
        kinds: Counter[str] = info["kinds"]  # type: ignore[assignment]
        actions = sum(kinds.values())
        print(
            f"Temporal Actions: {actions} for {t_entries:,} entries = {1000 * actions / max(t_entries, 1):.2f} "
            f"per 1,000 entries (goal <= 5)"
        )
        for name, count in kinds.most_common():
            print(f"  {count:5d}  {name}")
        print(f"posting histories: {info['events']} events, {info['bytes']:,} bytes (JSON) for 4 runs")
        return ratio
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


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
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="d2r-bench-posting-"))
    ensure_dev_keys()  # the NetSuite login is a certificate-signed JWT (settings' default key)
    print(f"time posted as: {args.time_mode}")
    ratios = []
    for n in range(args.rounds):
        (tmp / f"round-{n}").mkdir()
        ratios.append(await one_round(args, tmp / f"round-{n}", baseline_first=n % 2 == 0))
    if args.rounds > 1:
        print(f"ratios d2r / baseline: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
    if not args.skip_year:
        print()
        await engagement_year()


if __name__ == "__main__":
    asyncio.run(main())
