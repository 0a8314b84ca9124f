"""Signed webhooks from the CRM/PSA (Salesforce) and the ERP (NetSuite).

Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
HMAC-SHA256(secret, "{id}.{timestamp}.{raw body}")>`, verified on the raw bytes before
any parsing, in constant time, within a 5-minute window. Every event becomes (at most)
one durable workflow whose id is the event id, so a redelivered or replayed webhook is
harmless: the second start finds the first.

Each source is bound to its own URL and its own secret (`webhook_secrets[source]`), and
only the event types that source sends are accepted there: the same signed event posted
to the other source's URL is refused. A signed body that is not an event (`[1,2]`,
`{"data": "zzz"}`, a date that does not parse) is a 400 naming the field, before any
workflow starts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import door
from api.engagement_start import start_engagement
from api.problems import ProblemError, problems
from api.settings import ApiSettings
from contracts.feeds import inbound_event_workflow_id
from contracts.inbound import InboundEvent
from contracts.master_data import CustomerSyncInput, account_change_workflow_id
from workflows.inbound import InboundEventWorkflow
from workflows.master_data import CustomerSyncWorkflow

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TOLERANCE_SECONDS = 300
# The simulators' dev signing secret; a non-dev profile must configure its own.
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"d2r-dev-webhook-secret-0123456789").decode()


class Event(BaseModel):
    """The envelope every source sends; unknown envelope keys (id, occurred_at...) are kept out."""

    type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


class ClosedWon(BaseModel):
    opportunity_id: str = Field(pattern=r"^[A-Za-z0-9]{15,18}$")


class AccountChanged(BaseModel):
    account_id: str = Field(pattern=r"^[A-Za-z0-9]{15,18}$")
    modified_at: str = Field(pattern=r"^[0-9T:.+Z-]{10,40}$")


class MilestoneCompleted(BaseModel):
    milestone_id: str = Field(min_length=1, max_length=80)
    project_id: str = Field(min_length=1, max_length=80)
    actual_date: date | None = None


class PaymentApplied(BaseModel):
    invoice_id: str | int
    amount: Decimal = Field(allow_inf_nan=False)


class PaymentReceived(BaseModel):
    payment_id: str | int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tran_date: date
    applied: list[PaymentApplied] = Field(default_factory=list, max_length=1000)


# What each source sends: the only types its URL accepts, and the shape of the ones d2r reads.
SOURCE_EVENTS: dict[str, dict[str, type[BaseModel] | None]] = {
    "salesforce": {
        "opportunity.closed_won": ClosedWon,
        "account.changed": AccountChanged,
        "milestone.completed": MilestoneCompleted,
        "timecard.approved": None,
        "expense.approved": None,
    },
    "netsuite": {
        "payment.received": PaymentReceived,
        "invoice.posted": None,
        "credit_memo.posted": None,
    },
}


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    event_id: str
    workflow_id: str | None = None


def _secret(settings: ApiSettings, source: str) -> bytes:
    secret = (
        settings.webhook_secrets.get(source)
        or settings.webhook_secret
        or (DEV_WEBHOOK_SECRET if settings.profile == "dev" else None)
    )
    if not secret:
        raise ProblemError(503, "Webhooks not configured", f"D2R_WEBHOOK_SECRETS for {source} is not set")
    return base64.b64decode(secret.removeprefix("whsec_"))


def bad_body(field: str, message: str) -> ProblemError:
    errors = [{"field": field, "message": message}]
    return ProblemError(400, "Bad webhook body", f"{field}: {message}", type_=door.INVALID, errors=errors)


def parse_event(source: str, body: bytes) -> tuple[Event, BaseModel | None]:
    """The event and its typed data, or a 400 naming what is wrong."""
    try:
        raw = json.loads(body)
    except ValueError as error:
        raise bad_body("body", "not JSON") from error
    try:
        event = Event.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        raise bad_body(".".join(str(p) for p in first["loc"]) or "body", first["msg"]) from error
    accepted = SOURCE_EVENTS[source]
    if event.type not in accepted:
        sender = next((s for s, types in SOURCE_EVENTS.items() if event.type in types), None)
        if sender is not None:
            raise bad_body("type", f"{event.type} events come from {sender}, not {source}")
        return event, None  # a type d2r does not know: acknowledged and ignored
    shape = accepted[event.type]
    if shape is None:
        return event, None
    try:
        return event, shape.model_validate(event.data)
    except ValidationError as error:
        first = error.errors()[0]
        raise bad_body(".".join(["data", *(str(p) for p in first["loc"])]), first["msg"]) from error


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
    event_id = verify(_secret(settings, source), request.headers, body)
    event, typed = parse_event(source, body)
    kind = event.type
    # The workflow reads the checked values (a date that parsed, an id of the right shape).
    data = {**event.data, **(typed.model_dump(mode="json", exclude_none=True) if typed is not None else {})}
    client = request.app.state.temporal
    queues = settings.queues()

    if isinstance(typed, ClosedWon):
        # A closed-won deal starts its engagement with no manual call: the same start as the
        # API's POST (same id, summary and search attributes), and it does not wait either.
        started = await start_engagement(request, typed.opportunity_id, f"system:{source}", "Closed Won webhook")
        return WebhookAck(
            status="accepted" if started.created else "duplicate", event_id=event_id, workflow_id=started.workflow_id
        )

    if isinstance(typed, AccountChanged):
        # Master data: the changed account reaches every ERP now; one run per change, so a
        # redelivery starts nothing, and the daily sweep finds it already in step.
        wid = account_change_workflow_id(typed.account_id, typed.modified_at)
        try:
            await client.start_workflow(
                CustomerSyncWorkflow.run,
                CustomerSyncInput(account_ids=[typed.account_id], queues=queues),
                id=wid,
                task_queue=settings.workflow_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Account {typed.account_id} changed in {source}",
            )
        except WorkflowAlreadyStartedError:
            return WebhookAck(status="duplicate", event_id=event_id, workflow_id=wid)
        return WebhookAck(status="accepted", event_id=event_id, workflow_id=wid)

    if typed is not None and kind in InboundEventWorkflow.HANDLED:
        wid = inbound_event_workflow_id(source, event_id)
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
    responses=problems(404),
)
async def receive(source: Literal["salesforce", "netsuite"], request: Request) -> WebhookAck:
    return await _receive(request, source)
