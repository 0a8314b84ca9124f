"""Worker process: polls the workflow queue and one activity queue per outside system.

Each system's queue has its own concurrency and rate limit, so an ERP outage fills only
the ERP queue while CRM and PSA work keeps flowing. Run more of these processes (on any
machine) against the same Temporal cluster to scale out; Temporal shares the work.

Every worker polls as one Worker Deployment Version (settings `deployment_name` +
`build_id`): engagements stay pinned to the build they started on, so two builds run side
by side during a rollout (docs/operations.md, "Rolling out a new worker version").
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from security import redact
from workers.business_events import BusinessEvents
from workers.composition import build_activities
from workers.deployment import deployment_config, promote
from workers.health import serve_health
from workers.registry import WORKFLOWS, activities_by_role
from workers.settings import QueueLimits, WorkerSettings, WorkflowWorkerLimits
from workers.telemetry import instrument_httpx, setup_tracing
from workers.temporal_client import connect

log = logging.getLogger("d2r.worker")

# d2r's own packages hold no state at import time, and the workflows import contracts and
# domain through imports_passed_through() already. Passing `workflows` itself through too
# spares every new run re-executing workflows/engagement.py in a fresh sandbox: that was
# 14 % of worker CPU in a provisioning burst and most of each cached engagement's memory
# (README, "Figures"). The sandbox's restrictions on the standard library still apply to
# what a run imports; the strict sandbox runs in tests/workflows and the replay tests.
PASSTHROUGH_PACKAGES = ("workflows", "contracts", "domain")


def workflow_runner(limits: WorkflowWorkerLimits) -> WorkflowRunner:
    if limits.sandbox == "strict":
        return SandboxedWorkflowRunner()
    if limits.sandbox == "none":
        # Sandboxed, each payload's codec call enters the sandbox (an exec) for its serialization
        # context: 10 % of a provisioning burst's worker samples, more than d2r's workflow code.
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_PACKAGES)
    )


def build_workers(client: Client, settings: WorkerSettings, by_role: dict[str, list]) -> list[Worker]:
    """The process's workers, one per task queue it polls, all as this build's deployment
    version. Start them with `start_workers`: a version takes no new work until it is current."""
    roles = settings.role_set()
    version = deployment_config(settings.deployment_name, settings.build_id)
    events = [BusinessEvents(settings.events_log)]  # one JSON line per step, in its own file
    workers: list[Worker] = []
    if "workflows" in roles:
        sizing = settings.workflow_limits
        workers.append(
            Worker(
                client,
                task_queue=settings.workflow_task_queue,
                workflows=WORKFLOWS,
                activities=by_role["workflows"],
                deployment_config=version,
                interceptors=events,
                workflow_runner=workflow_runner(sizing),
                max_cached_workflows=sizing.cache_size(),
                max_concurrent_workflow_tasks=sizing.max_concurrent_tasks,
                workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=sizing.pollers),
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=sizing.sticky_schedule_to_start_seconds),
            )
        )
    queues: dict[str, tuple[str, QueueLimits]] = {
        "crm": (settings.crm_task_queue, settings.crm_limits),
        "psa": (settings.psa_task_queue, settings.psa_limits),
        "erp": (settings.erp_task_queue, settings.erp_limits),
    }
    if by_role.get("reporting"):  # only when a hub is configured
        queues["reporting"] = (settings.reporting_task_queue, settings.reporting_limits)
    for role, (queue, limits) in queues.items():
        if role in roles:
            workers.append(
                Worker(
                    client,
                    task_queue=queue,
                    activities=by_role[role],
                    max_concurrent_activities=limits.max_concurrent,
                    max_task_queue_activities_per_second=limits.max_per_second,
                    activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=limits.pollers),
                    deployment_config=version,  # a pinned workflow's activities run on its own build
                    interceptors=events,
                )
            )
    return workers


async def start_workers(
    client: Client, settings: WorkerSettings, by_role: dict[str, list], exits: AsyncExitStack
) -> list[Worker]:
    """Build the workers, start them polling (they stop when `exits` closes), then apply the
    settings' current-version policy: the server registers a version only once it polls."""
    workers = build_workers(client, settings, by_role)
    for worker in workers:
        await exits.enter_async_context(worker)
    await promote(client, settings.deployment_name, settings.build_id, settings.set_current_version)
    return workers


async def run(settings: WorkerSettings, stop: asyncio.Event) -> None:
    setup_tracing("d2r-worker", settings.otel_exporter, settings.otel_endpoint)
    instrument_httpx()
    client = await connect(settings)
    async with AsyncExitStack() as stack:
        acts = await build_activities(settings, stack, client)
        workers = await start_workers(client, settings, activities_by_role(acts), stack)
        if settings.health_port:
            await stack.enter_async_context(serve_health(settings.health_port, client, workers))
        log.info(
            "worker %s/%s polling %s",
            settings.deployment_name,
            settings.build_id,
            ", ".join(w.task_queue for w in workers),
        )
        await stop.wait()
        log.info("worker draining in-flight tasks")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()  # vendor errors may quote a request: tokens and secrets are blanked
    stop = asyncio.Event()

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(WorkerSettings(), stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
