"""Signed webhooks from the CRM/PSA (Salesforce) and the ERP (NetSuite).

Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
HMAC-SHA256(secret, "{id}.{timestamp}.{raw body}")>`, verified on the raw bytes before
any parsing, in constant time, within a 5-minute window. Every event becomes (at most)
one durable workflow whose id is the event id, so a redelivered or replayed webhook is
harmless: the second start finds the first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.problems import ProblemError
from api.settings import ApiSettings
from workflows.engagement import EngagementWorkflow
from workflows.engagement_models import EngagementInput
from workflows.inbound import InboundEvent, InboundEventWorkflow

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TOLERANCE_SECONDS = 300
# The simulators' dev signing secret; a non-dev profile must configure its own.
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"d2r-dev-webhook-secret-0123456789").decode()


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    event_id: str
    workflow_id: str | None = None


def _secret(settings: ApiSettings) -> bytes:
    secret = settings.webhook_secret or (DEV_WEBHOOK_SECRET if settings.profile == "dev" else None)
    if not secret:
        raise ProblemError(503, "Webhooks not configured", "D2R_WEBHOOK_SECRET is not set")
    return base64.b64decode(secret.removeprefix("whsec_"))


def verify(secret: bytes, headers: Any, body: bytes, now: float | None = None) -> str:
    """The webhook id of a correctly signed, fresh request; 401 otherwise."""
    event_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature", "")
    if not event_id or not timestamp or not signatures:
        raise ProblemError(401, "Unsigned webhook", "webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        sent = int(timestamp)
    except ValueError as error:
        raise ProblemError(401, "Bad webhook timestamp", "webhook-timestamp must be Unix seconds") from error
    if abs((now or time.time()) - sent) > TOLERANCE_SECONDS:
        raise ProblemError(401, "Stale webhook", "the webhook timestamp is more than 5 minutes off")
    expected = base64.b64encode(
        hmac.new(secret, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    # Several signatures may be sent (key rotation): any valid one will do.
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return str(event_id)
    raise ProblemError(401, "Bad webhook signature", "no signature matches")


async def _receive(request: Request, source: str) -> WebhookAck:
    settings: ApiSettings = request.app.state.settings
    body = await request.body()
    event_id = verify(_secret(settings), request.headers, body)
    try:
        event = json.loads(body)
    except ValueError as error:
        raise ProblemError(400, "Bad webhook body", "the body is not JSON") from error
    kind = str(event.get("type", ""))
    data = event.get("data") or {}
    client = request.app.state.temporal
    queues = settings.queues()

    if kind == "opportunity.closed_won" and data.get("opportunity_id"):
        # A closed-won deal starts its engagement with no manual call (same id as the API's POST).
        wid = f"engagement-{data['opportunity_id']}"
        try:
            await client.start_workflow(
                EngagementWorkflow.run,
                EngagementInput(opportunity_id=data["opportunity_id"], requested_by=f"system:{source}", queues=queues),
                id=wid,
                task_queue=settings.workflow_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Engagement for opportunity {data['opportunity_id']} (from the CRM)",
            )
        except WorkflowAlreadyStartedError:
            return WebhookAck(status="duplicate", event_id=event_id, workflow_id=wid)
        return WebhookAck(status="accepted", event_id=event_id, workflow_id=wid)

    if kind in InboundEventWorkflow.HANDLED:
        wid = f"webhook-{source}-{event_id}"
        try:
            await client.start_workflow(
                InboundEventWorkflow.run,
                InboundEvent(source=source, event_id=event_id, type=kind, data=data, queues=queues),
                id=wid,
                task_queue=settings.workflow_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{kind} from {source}",
            )
        except WorkflowAlreadyStartedError:
            return WebhookAck(status="duplicate", event_id=event_id, workflow_id=wid)
        return WebhookAck(status="accepted", event_id=event_id, workflow_id=wid)
    # Invoices and credit memos are d2r's own postings; time and expense approvals are
    # picked up by the batched posting run. Acknowledge so the sender stops retrying.
    return WebhookAck(status="ignored", event_id=event_id)


@router.post(
    "/{source}",
    response_model=WebhookAck,
    status_code=202,
    summary="Signed events from Salesforce (CRM/PSA) or NetSuite (ERP)",
)
async def receive(source: Literal["salesforce", "netsuite"], request: Request) -> WebhookAck:
    return await _receive(request, source)
