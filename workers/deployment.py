"""Temporal Worker Deployment versioning: which version this process is, and making it current.

Every worker of a process declares the same version (deployment name + build id), so a
pinned engagement's activities run on the build that runs its workflow code. New workflow
executions go to the deployment's *current* version; a version only takes new work once it
is current, so a fresh cluster (``make run``, a first compose start, a test) needs one set.
Rolling out a second version is an operator's decision (docs/operations.md); the worker only
makes itself current when told to (``D2R_SET_CURRENT_VERSION``).
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

log = logging.getLogger("d2r.worker.deployment")

# A describe asks the deployment's entity workflow; on a busy server it can time out, or
# refuse with "too many requests issued to Worker Deployment" while several workers start.
_TRANSIENT = {
    RPCStatusCode.CANCELLED,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


def deployment_config(deployment_name: str, build_id: str) -> WorkerDeploymentConfig:
    """Versioned polling; each workflow type declares its own behaviour on `@workflow.defn`
    (the SDK refuses to register one that does not), so there is no worker-wide default."""
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=deployment_name, build_id=build_id),
        use_worker_versioning=True,
    )


async def describe(client: Client, deployment_name: str) -> WorkerDeploymentInfo | None:
    """The deployment as the server holds it; None before any of its workers polled."""
    while True:
        try:
            described = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment_name)
            )
            return described.worker_deployment_info
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            if error.status not in _TRANSIENT:
                raise
            await asyncio.sleep(0.2)


async def current_build_id(client: Client, deployment_name: str) -> str | None:
    """The deployment's current build id; None when it has none (or does not exist yet)."""
    info = await describe(client, deployment_name)
    return (info.routing_config.current_deployment_version.build_id or None) if info else None


async def set_current_version(
    client: Client, deployment_name: str, build_id: str, identity: str = "d2r-worker"
) -> None:
    """Make `build_id` the deployment's current version and wait until the task queues route
    by it. The server knows a version only after its workers have polled, so this retries
    until then (bound it with `asyncio.timeout`); setting the current version again is a no-op."""
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=deployment_name, build_id=build_id, identity=identity
                )
            )
            break
        except RPCError as error:
            # Another replica of the same build may have won the race: that is success too.
            if await current_build_id(client, deployment_name) == build_id:
                break
            log.debug("%s/%s not settable as current yet: %s", deployment_name, build_id, error)
            await asyncio.sleep(0.2)
    await wait_for_routing(client, deployment_name)
    log.info("worker deployment %s: current version is now %s", deployment_name, build_id)


async def wait_for_routing(client: Client, deployment_name: str) -> None:
    """Routing changes reach the task queues asynchronously; until they have, new work may
    still go to the previous version."""
    while True:
        info = await describe(client, deployment_name)
        state = info.routing_config_update_state if info else None
        if state != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS:
            return  # COMPLETED, or UNSPECIFIED from a server that does not report it
        await asyncio.sleep(0.1)


async def promote(client: Client, deployment_name: str, build_id: str, policy: str, within: float = 120.0) -> bool:
    """Apply the settings' policy once this process's workers poll. Returns whether it set
    the current version. `when_unset`: only a deployment with no current version (a fresh
    cluster) takes this one; `always`: this one becomes current (a single-worker dev stack);
    `never`: the operator does it (`temporal worker deployment set-current-version`)."""
    if policy == "never":
        return False
    if policy == "when_unset":
        current = await current_build_id(client, deployment_name)
        if current is not None:
            if current != build_id:
                log.info(
                    "worker deployment %s: %s is current; %s takes new work once an operator makes it current",
                    deployment_name,
                    current,
                    build_id,
                )
            return False
    try:
        async with asyncio.timeout(within):
            await set_current_version(client, deployment_name, build_id)
    except TimeoutError as error:
        raise RuntimeError(
            f"could not make {deployment_name}/{build_id} the current version within {within:.0f}s "
            "(do all its task queues have pollers? does the server support worker deployments?)"
        ) from error
    return True
