"""Month-end at firm scale, end to end, on a stack this script starts itself
(bench/scale_stack.py: Temporal dev server, the four vendor simulators, the reporting hub,
N worker processes, the API as a process), every legal entity on the vendors the demo
firm's routing gives it (UK01 books in Dynamics 365 Finance, DE01 delivers on Kantata, the
others on NetSuite and Certinia: workers/devstack.py):

1. loads `--engagements N` closed-won deals (one T&M line each) across `--entities`
   into the CRM, plus `--bare B` more for the floor;
2. provisions the N as real engagements, Closed Won to IN_DELIVERY, started as a caller
   starts them: `POST /v1/engagements` to the API process over HTTP, `--concurrency`
   requests in flight, each answered 202 with a Location (any 4xx/5xx is counted in the
   figures, `api_start_errors`); and B with the bare workflow (bench/bare_provisioning.py),
   started straight through the Temporal client with the same concurrency. The bare workflow
   makes the same activity calls on the same task queues, so the same workers, connectors
   (each deal's own ERP and PSA, by the same routing) and rate limits serve it; it has no
   door (the API's start also asks Temporal whether the engagement exists, reads the
   opportunity from the CRM for its search attributes and audits the start in the hub), no
   view, search attributes, approvals or saga. Both run in `--rounds` alternating rounds
   (bare first, then real first, ...: load from other processes weighs on both alike);
3. records `--timecards M` approved timecards (a week of 5 x 8 h each) on the engagements'
   projects, each in its entity's PSA (a Certinia timecard, or five Kantata time entries),
   in two halves, with a daily posting run per entity between them (time posted during the
   month costs the engagements nothing);
4. runs the month-end close of every entity through the API, one after the other
   (started by one finance user, approved by another), timing each;
5. reads every engagement through the API (GET p99), then every history: the largest
   payload, the longest history, and the Actions of each close window.

The last line printed is one JSON object with the figures (README, "Figures").

    nice -n 10 .venv/bin/python -m bench.bench_scale [--engagements 3000] [--workers 2]
        [--timecards N] [--entities US01,UK01,DE01,JP01] [--bare 300] [--rounds 3]
        [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from itertools import zip_longest
from pathlib import Path
from typing import Any

import httpx

from bench.bare_provisioning import BareInput, BareProvisioningWorkflow
from bench.history_figures import counted_closes, read_histories
from bench.scale_stack import FINANCE_A, FINANCE_B, READER, SALES, ScaleStack, vendors_of
from contracts import search_attributes as sa
from contracts.ids import close_workflow_id, posting_workflow_id
from contracts.posting import PostingInput
from simulators.demo_data import BILL_RATES, LEGAL_ENTITIES
from workflows.posting import TimeAndExpensePostingWorkflow

PERIOD = "2026-11"
FIRST_WEEK, SECOND_WEEK = date(2026, 11, 2), date(2026, 11, 16)
MID_MONTH = date(2026, 11, 13)  # the daily posting run between the two halves
ROLE = "Senior Consultant"
# who books time on each entity's engagements (a demo-seed consultant of that entity and role)
CONSULTANT = {"US01": "Margaret Hamilton", "UK01": "Alan Turing", "DE01": "Konrad Zuse", "JP01": "Yukihiro Matsumoto"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def load_deals(stack: ScaleStack, count: int, entities: list[str]) -> list[tuple[str, str]]:
    """`count` closed-won deals (opportunity id, legal entity), a customer per ten deals."""
    accounts = await stack.create_many(
        "Account",
        [
            {
                "Name": f"Scale Customer {i:05d}",
                "D2R_Customer_Key__c": f"SCALE-{stack.tag}-{i:05d}",
                "BillingCountry": LEGAL_ENTITIES[entities[i % len(entities)]][1],
                "BillingCity": "Springfield",
                "Industry": "Manufacturing",
                "CurrencyIsoCode": LEGAL_ENTITIES[entities[i % len(entities)]][0],
                "D2R_Tax_Id__c": f"TAX-SCALE-{i:05d}",
                "Type": "Customer",
            }
            for i in range(len(entities) * max(1, count // (10 * len(entities))))
        ],
    )
    products = (await stack.seed_info())["products"]
    deals = []
    rows = []
    for i in range(count):
        entity = entities[i % len(entities)]
        currency, _country, _name, region = LEGAL_ENTITIES[entity]
        deals.append(entity)
        rows.append(
            {
                "Name": f"Scale deal {i:06d}",
                # the account of the same entity (accounts cycle through the entities too)
                "AccountId": accounts[((i // len(entities)) * len(entities) + i % len(entities)) % len(accounts)],
                "StageName": "Closed Won",
                "CloseDate": "2026-10-26",
                "CurrencyIsoCode": currency,
                "D2R_Legal_Entity__c": entity,
                "D2R_Billing_Terms__c": "Net 30",
                "D2R_Delivery_Region__c": region,
                "D2R_Service_Package__c": "ADVISORY-TM",
                "D2R_Contract_Start__c": "2026-11-01",
                "D2R_Contract_End__c": "2027-10-31",
                "Amount": 0,
            }
        )
    opportunities = await stack.create_many("Opportunity", rows)
    await stack.create_many(
        "OpportunityLineItem",
        [
            {
                "OpportunityId": opp,
                "Product2Id": products["CONS-TM"],
                "Quantity": 200,
                "UnitPrice": BILL_RATES[LEGAL_ENTITIES[entity][0]][ROLE],
                "D2R_Billing_Model__c": "time_and_materials",
                "D2R_Revenue_Method__c": "as_delivered",
                "D2R_Role__c": ROLE,
                "D2R_Hours__c": 200,
                "Description": "Advisory, T&M",
            }
            for opp, entity in zip(opportunities, deals, strict=True)
        ],
    )
    return list(zip(opportunities, deals, strict=True))


async def _started(starts: list[Any], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(start: Any) -> None:
        async with gate:
            await start()

    await asyncio.gather(*(one(s) for s in starts))


async def _until(count: Any, target: int, what: str, within: float, quorum: int | None = None) -> float:
    """Wait until `count()` reaches `target`; returns when it first reached `quorum` (monotonic)."""
    deadline = time.monotonic() + within
    last, reached = -1, None
    while time.monotonic() < deadline:
        done = await count()
        if reached is None and done >= (quorum if quorum is not None else target):
            reached = time.monotonic()
        if done >= target:
            return reached if reached is not None else time.monotonic()
        if done != last:
            log(f"  {what}: {done}/{target}")
            last = done
        await asyncio.sleep(1.0)
    raise RuntimeError(f"{what}: not done within {within:.0f}s")


def _quorum(before: int, chunk: int) -> int:
    # 95 % of a chunk: its rate while the work flows, without the last few runs that wait
    # out a retry backoff (a chunk of 100 bare runs otherwise measures its slowest one)
    return before + max(1, int(0.95 * chunk))


async def provision_bare(
    stack: ScaleStack, deals: list[tuple[str, str]], entities: dict[str, str], concurrency: int, before: int = 0
) -> tuple[float, float]:
    """Seconds to provision `deals` with the bare workflow (`before` of them ran earlier),
    to the last and to 95 % of them."""
    if not deals:
        return 0.0, 0.0
    client = stack.client
    t0 = time.perf_counter()
    await _started(
        [
            lambda opp=opp: client.start_workflow(
                BareProvisioningWorkflow.run,
                BareInput(opportunity_id=opp, queues=stack.queues, legal_entities=entities),
                id=f"bare-{opp}",
                task_queue=stack.bare_queue,
            )
            for opp, _entity in deals
        ],
        concurrency,
    )

    async def done() -> int:
        query = "WorkflowType = 'BareProvisioningWorkflow' AND ExecutionStatus = 'Completed'"
        return (await client.count_workflows(query)).count

    quorum = await _until(
        done, before + len(deals), "bare provisioning", within=600 + 2 * len(deals), quorum=_quorum(before, len(deals))
    )
    return time.perf_counter() - t0, quorum - t0


class ApiStarts:
    """What the API answered to the bench's `POST /v1/engagements`: statuses and latencies."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.millis: list[float] = []
        self.without_location = 0  # a 2xx answer with no Location header (the contract says one)
        self.refusals: list[str] = []  # the first few 4xx/5xx bodies, for the log

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if status < 300)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400)

    async def post(self, api: httpx.AsyncClient, opportunity_id: str) -> None:
        t0 = time.perf_counter()
        try:
            response = await api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
        except httpx.HTTPError as error:  # no answer at all: counted as a 5xx would be
            self.statuses[599] += 1
            self.refusals.append(f"{opportunity_id}: {error!r}")
            return
        self.millis.append((time.perf_counter() - t0) * 1000)
        self.statuses[response.status_code] += 1
        if response.status_code < 300 and response.headers.get("location") != f"/v1/engagements/{opportunity_id}":
            self.without_location += 1
        if response.status_code >= 400 and len(self.refusals) < 5:
            self.refusals.append(f"{opportunity_id}: {response.status_code} {response.text[:300]}")
            log(f"  POST /v1/engagements {self.refusals[-1]}")

    def percentile(self, q: float) -> float:
        times = sorted(self.millis)
        return times[min(len(times) - 1, round(q * (len(times) - 1)))] if times else 0.0


async def provision(
    stack: ScaleStack, deals: list[tuple[str, str]], starts: ApiStarts, concurrency: int, before: int = 0
) -> tuple[float, float]:
    """Seconds to take `deals` from Closed Won to IN_DELIVERY, started through the API
    (`before` engagements ran earlier), to the last and to 95 % of them."""
    if not deals:
        return 0.0, 0.0
    api = stack.api
    assert api is not None
    accepted_before = starts.accepted
    t0 = time.perf_counter()
    await _started([lambda opp=opp: starts.post(api, opp) for opp, _entity in deals], concurrency)
    # what the API refused never starts: wait for the engagements it accepted
    target = before + starts.accepted - accepted_before

    async def settled() -> int:
        stages = "('IN_DELIVERY', 'NEEDS_ATTENTION')"
        query = f"WorkflowType = 'EngagementWorkflow' AND D2RStage IN {stages}"
        return (await stack.client.count_workflows(query)).count

    quorum = await _until(
        settled, target, "provisioning", within=600 + 2 * len(deals), quorum=_quorum(before, target - before)
    )
    return time.perf_counter() - t0, quorum - t0


async def provision_both(
    stack: ScaleStack,
    bare: list[tuple[str, str]],
    real: list[tuple[str, str]],
    entities: dict[str, str],
    rounds: int,
    concurrency: int,
) -> dict[str, Any]:
    """Bare and real provisioning in `rounds` alternating rounds (bare first, then real first,
    ...), so load from other processes drifting during the run weighs on both sides alike.
    Each side's rate to the last run and to 95 % of each round, the engagements needing
    attention and the load averages seen."""
    seconds = {"bare": [0.0, 0.0], "real": [0.0, 0.0]}
    at_95 = {"bare": 0, "real": 0}  # the runs each round had done when it reached 95 %
    loads = [os.getloadavg()[0]]
    starts = ApiStarts()
    for i in range(rounds):
        b = bare[i * len(bare) // rounds : (i + 1) * len(bare) // rounds]
        r = real[i * len(real) // rounds : (i + 1) * len(real) // rounds]
        for side in ("bare", "real") if i % 2 == 0 else ("real", "bare"):
            if side == "bare":
                took = await provision_bare(stack, b, entities, concurrency, before=i * len(bare) // rounds)
            else:
                took = await provision(stack, r, starts, concurrency, before=i * len(real) // rounds)
            seconds[side] = [seconds[side][0] + took[0], seconds[side][1] + took[1]]
            chunk = b if side == "bare" else r
            at_95[side] += max(1, int(0.95 * len(chunk))) if chunk else 0
            loads.append(os.getloadavg()[0])
        log(f"  round {i + 1}/{rounds}: bare {len(b)}, real {len(r)}; load {loads[-1]:.1f}")
    query = "WorkflowType = 'EngagementWorkflow' AND D2RStage = 'NEEDS_ATTENTION'"
    stuck = (await stack.client.count_workflows(query)).count

    def rate(count: int, took: float) -> float:
        return count / took if took else 0.0

    return {
        "bare": rate(len(bare), seconds["bare"][0]),
        "real": rate(len(real), seconds["real"][0]),
        "bare_95": rate(at_95["bare"], seconds["bare"][1]),
        "real_95": rate(at_95["real"], seconds["real"][1]),
        "stuck": stuck,
        "loads": loads,
        "starts": starts,
    }


async def projects_by_entity(stack: ScaleStack) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    query = "WorkflowType = 'EngagementWorkflow' AND D2RStage = 'IN_DELIVERY'"
    async for wf in stack.client.list_workflows(query):
        attrs = wf.typed_search_attributes
        project, entity = attrs.get(sa.PROJECT_ID), attrs.get(sa.LEGAL_ENTITY)
        if project and entity:
            found[entity].append(project)
    return found


def timecard(project: str, resource: str, monday: date) -> dict[str, Any]:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    return {
        "pse__Project__c": project,
        "pse__Resource__c": resource,
        "pse__Start_Date__c": monday.isoformat(),
        "pse__End_Date__c": (monday + timedelta(days=6)).isoformat(),
        "pse__Status__c": "Approved",
        "pse__Approved__c": True,
        "pse__Submitted__c": True,
        "pse__Billable__c": True,
        "D2R_Role__c": ROLE,
        **{f"pse__{d}_Hours__c": 8 for d in days},
    }


def kantata_week(workspace: str, user: str, monday: date) -> list[dict[str, Any]]:
    """A week of 5 x 8 h as Kantata keeps it: one approved time entry per day."""
    return [
        {
            "workspace_id": workspace,
            "user_id": user,
            "date_performed": (monday + timedelta(days=d)).isoformat(),
            "time_in_minutes": 8 * 60,
            "billable": True,
            "approved": True,
        }
        for d in range(5)
    ]


async def record_time(stack: ScaleStack, projects: dict[str, list[str]], count: int, monday: date) -> None:
    """`count` approved weeks on the projects, each in the PSA its entity delivers on."""
    # Interleaved by entity, so every entity's month-end has time to bill and reconcile (in
    # entity order the first N cards all went to the first entities).
    by_entity = [[(entity, p) for p in ps] for entity, ps in sorted(projects.items())]
    flat = [pair for rank in zip_longest(*by_entity) for pair in rank if pair is not None]
    weeks = [flat[i % len(flat)] for i in range(count)] if flat else []
    certinia = [(e, p) for e, p in weeks if vendors_of(e)["psa"] == "certinia"]
    kantata = [(e, p) for e, p in weeks if vendors_of(e)["psa"] == "kantata"]
    others = {vendors_of(e)["psa"] for e, _ in weeks} - {"certinia", "kantata"}
    if others:
        raise RuntimeError(f"the bench records time in Certinia and Kantata only, not {sorted(others)}")
    if certinia:
        people = {c["name"]: c["id"] for c in (await stack.seed_info())["consultants"]}
        cards = [timecard(project, people[CONSULTANT[entity]], monday) for entity, project in certinia]
        await stack.create_many("pse__Timecard_Header__c", cards)
    if kantata:
        users = {u["name"]: u["id"] for u in (await stack.kantata_seed_info())["users"]}
        entries = [e for entity, ws in kantata for e in kantata_week(ws, users[CONSULTANT[entity]], monday)]
        await stack.kantata_create_many("time_entries", entries)


async def daily_posting(stack: ScaleStack, entities: list[str]) -> tuple[datetime, datetime, int]:
    start = datetime.now(UTC)
    results = await asyncio.gather(
        *(
            stack.client.execute_workflow(
                TimeAndExpensePostingWorkflow.run,
                PostingInput(legal_entity=e, posting_date=MID_MONTH, cutoff=MID_MONTH, queues=stack.queues),
                id=posting_workflow_id(e, MID_MONTH),
                task_queue=stack.workflow_queue,
            )
            for e in entities
        )
    )
    return start, datetime.now(UTC), sum(r.progress.time_entries for r in results)


async def close(stack: ScaleStack, entity: str, within: float) -> tuple[float, datetime, datetime, dict[str, Any]]:
    assert stack.api is not None
    api = stack.api
    start = datetime.now(UTC)
    t0 = time.perf_counter()
    response = await api.post("/v1/period-close", json={"legal_entity": entity, "period": PERIOD}, headers=FINANCE_A)
    if response.status_code >= 300:
        raise RuntimeError(f"close {entity}: {response.status_code} {response.text[:500]}")
    url = f"/v1/period-close/{entity}/{PERIOD}"
    deadline = time.monotonic() + within
    approved = False
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await api.get(url, headers=FINANCE_A)).json()
        step = body.get("step")
        if step == "AWAITING_APPROVAL" and not approved:
            decision = await api.post(f"{url}/approve", json={"comment": "bench"}, headers=FINANCE_B)
            if decision.status_code == 409 and "override_reason" in decision.text:
                # Differences are reported in the figures (reconciliation); the bench locks over them.
                log(f"  {entity} reconciliation: {json.dumps(body.get('reconciliation'))[:3000]}")
                override = {"comment": "bench", "override_reason": "bench run: differences reported in the figures"}
                decision = await api.post(f"{url}/approve", json=override, headers=FINANCE_B)
            if decision.status_code >= 300:
                raise RuntimeError(f"approve {entity}: {decision.status_code} {decision.text[:500]}")
            approved = True
        elif step == "CLOSED":
            return time.perf_counter() - t0, start, datetime.now(UTC), body
        elif step in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"close {entity} ended {step}: {json.dumps(body)[:1000]}")
        await asyncio.sleep(2.0)
    raise RuntimeError(f"close {entity} not CLOSED within {within:.0f}s (last step {body.get('step')})")


async def query_latency(stack: ScaleStack, opportunities: list[str], sample: int) -> tuple[float, float]:
    assert stack.api is not None
    chosen = random.Random(7).sample(opportunities, min(sample, len(opportunities)))
    times = []
    for opp in chosen:
        t0 = time.perf_counter()
        response = await stack.api.get(f"/v1/engagements/{opp}", headers=READER)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET engagement {opp}: {response.status_code} {response.text[:300]}")
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99


async def run(args: argparse.Namespace) -> dict[str, Any]:
    entities = [e.strip() for e in args.entities.split(",") if e.strip()]
    currencies = {e: LEGAL_ENTITIES[e][0] for e in LEGAL_ENTITIES}
    tmp = Path(tempfile.mkdtemp(prefix="d2r-bench-scale-"))
    log(f"bench_scale: {args.engagements} engagements on {args.workers} worker(s); logs in {tmp}")
    stack = ScaleStack(tmp)
    try:
        extra = {"D2R_WORKFLOW_LIMITS__SANDBOX": args.sandbox} if args.sandbox else None
        await stack.start(args.workers, extra)
        async with AsyncExitStack() as exits:
            await stack.open_api(exits)
            deals = await load_deals(stack, args.engagements + args.bare, entities)
            bare, real = deals[: args.bare], deals[args.bare :]
            log(f"loaded {len(deals)} deals; bare provisioning of {len(bare)}")
            rates = await provision_both(stack, bare, real, currencies, args.rounds, args.concurrency)
            bare_rate, rate, stuck = rates["bare"], rates["real"], rates["stuck"]
            log(
                f"provisioned: {rate:.2f}/s vs bare {bare_rate:.2f}/s (to 95 %: {rates['real_95']:.2f} vs "
                f"{rates['bare_95']:.2f}), {stuck} need attention; API answers {dict(rates['starts'].statuses)}"
            )
            await asyncio.sleep(3)  # let the last workflow tasks finish before reading memory
            cached = stack.rss.now()  # every engagement cached, waiting in IN_DELIVERY
            projects = await projects_by_entity(stack)
            half = args.timecards // 2
            await record_time(stack, projects, half, FIRST_WEEK)
            p_start, p_end, posted_mid = await daily_posting(stack, entities)
            await record_time(stack, projects, args.timecards - half, SECOND_WEEK)
            log(f"timecards recorded ({args.timecards}); mid-month posting posted {posted_mid} entries")
            walls: dict[str, float] = {}
            windows: dict[str, tuple[datetime, datetime]] = {}
            reports: dict[str, dict[str, Any]] = {}
            for entity in entities:
                wall, start, end, report = await close(stack, entity, within=600 + 1.0 * args.engagements)
                walls[entity], windows[entity], reports[entity] = round(wall, 1), (start, end), report
                log(f"close {entity}: {wall:.1f} s")
            records = await stack.simulator_counts()
            p50, p99 = await query_latency(stack, [opp for opp, _ in real], args.queries)
            log(f"engagement GET: p50 {p50:.1f} ms, p99 {p99:.1f} ms; reading histories")
        figures = await read_histories(stack.client)
        counted = await counted_closes(stack.client, {e: close_workflow_id(e, PERIOD) for e in entities})
        per_entity = {e: sum(1 for _, x in real if x == e) for e in entities}
        close_actions = {e: figures.actions_between(*windows[e]) for e in entities}
        rss = [round(stack.rss.peaks[w.pid], 1) for w in stack.workers]
        growth = max(cached[w.pid] - stack.rss.baseline[w.pid] for w in stack.workers)
    finally:
        await stack.stop()
    closed = sum(per_entity.values())
    starts: ApiStarts = rates["starts"]
    return {
        "engagements": len(real),
        "workers": args.workers,
        "sandbox": args.sandbox or "passthrough",
        "entities": per_entity,
        # the vendors each entity runs on (the firm's routing, workers/devstack.py)
        "vendors": {e: vendors_of(e) for e in entities},
        "timecards": args.timecards,
        # the engagements' starts: POST /v1/engagements to the API process, by status
        "api_start_concurrency": args.concurrency,
        "api_start_statuses": {str(k): v for k, v in sorted(starts.statuses.items())},
        "api_start_errors": starts.errors,
        "api_start_without_location": starts.without_location,
        "api_start_p50_ms": round(starts.percentile(0.5), 1),
        "api_start_p99_ms": round(starts.percentile(0.99), 1),
        "provision_per_s": round(rate, 2),
        "bare_provision_per_s": round(bare_rate, 2),
        "provision_vs_bare": round(rate / bare_rate, 2) if bare_rate else None,
        # to 95 % of each round: the rates while the work flows, without retried stragglers
        "provision_per_s_95": round(rates["real_95"], 2),
        "bare_provision_per_s_95": round(rates["bare_95"], 2),
        "provision_vs_bare_95": round(rates["real_95"] / rates["bare_95"], 2) if rates["bare_95"] else None,
        "provision_rounds": args.rounds,
        "provision_load_average": [round(x, 1) for x in rates["loads"]],
        "engagements_needing_attention": stuck,
        "close_wall_s": {**walls, "total": round(sum(walls.values()), 1)},
        # bench/close_actions.py's count of each close's histories (heartbeats estimated)
        "close_actions_per_engagement": counted["per_engagement"],
        "close_actions_by_entity": counted["by_entity"],
        "close_actions_counted": counted,
        # every billable event of every history while the closes ran (no heartbeats)
        "close_window_actions_per_engagement": round(sum(close_actions.values()) / max(closed, 1), 3),
        "close_window_actions_by_entity": close_actions,
        "posting_actions_on_engagements": figures.actions_between(p_start, p_end, "EngagementWorkflow"),
        "time_entries_posted_mid_month": posted_mid,
        "max_payload_bytes": figures.max_payload_bytes,
        "max_payload_where": figures.max_payload_where,
        "max_history_events": figures.max_history_events,
        "max_history_where": figures.max_history_where,
        "histories_read": figures.histories,
        "worker_rss_mib": rss,
        "worker_rss_baseline_mib": [round(stack.rss.baseline[w.pid], 1) for w in stack.workers],
        "worker_rss_provisioned_mib": [round(cached[w.pid], 1) for w in stack.workers],
        # what a cached engagement costs: the largest worker's growth from start-up to every
        # engagement provisioned, over its share of them (Temporal spreads them)
        "worker_rss_kib_per_engagement": round(growth * 1024 / max(1, len(real) / args.workers), 1),
        "reconciliation": {e: (r.get("reconciliation") or {}).get("status") for e, r in reports.items()},
        "billed_by_entity": {e: (r.get("totals") or {}).get("billed") for e, r in reports.items()},
        # every vendor simulator's records at the end (seed data included): where the work went
        "simulator_records": records,
        "query_p50_ms": round(p50, 1),
        "query_p99_ms": round(p99, 1),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engagements", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes on the same task queues")
    parser.add_argument("--timecards", type=int, default=None, help="approved timecards (default: one per engagement)")
    parser.add_argument("--entities", default="US01,UK01,DE01,JP01", help="legal entities the deals are spread over")
    parser.add_argument("--bare", type=int, default=None, help="deals provisioned by the bare workflow (default N/10)")
    parser.add_argument("--queries", type=int, default=500, help="engagement GETs for the latency figure")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare / real provisioning rounds")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="engagement starts in flight (API POSTs; bare starts alike)"
    )
    parser.add_argument(
        "--sandbox", choices=["passthrough", "strict", "none"], default=None, help="the workers' sandbox"
    )
    args = parser.parse_args(argv)
    if args.timecards is None:
        args.timecards = args.engagements
    if args.bare is None:
        args.bare = max(10, args.engagements // 10)
    return args


def main(argv: list[str] | None = None) -> None:
    figures = asyncio.run(run(parse(argv)))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
