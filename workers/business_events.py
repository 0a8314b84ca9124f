"""Business-event log: one JSON line per step (each activity execution) with the keys a
person searches by — workflow id, opportunity id, legal entity, period — and a correlation
id (the OpenTelemetry trace id, shared with the API request that started the work; the
workflow run id when tracing is off).

It is written by a worker interceptor around every activity, so workflow code stays as it
is (deterministic, nothing logged outside `workflow.logger` semantics), and it goes to its
own file (`D2R_EVENTS_LOG`, `make run`: `.d2r/logs/events.jsonl`), apart from the HTTP
traces and tracebacks of `worker.log`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from contracts.ids import ENGAGEMENT_PREFIX, opportunity_of

LOGGER_NAME = "d2r.events"
# the business keys an activity input may carry, read at its top level or one level down
KEYS = ("opportunity_id", "legal_entity", "customer_id", "project_id", "period")


class JsonLines(logging.Formatter):
    """A record's `event` dict as one JSON line, with the time in UTC ISO form first."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or {"message": record.getMessage()}
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return json.dumps({"ts": stamp, **event}, default=str, ensure_ascii=False)


def setup_event_log(path: Path | None) -> logging.Logger:
    """The events logger, writing to `path` only (it never propagates into worker.log).
    Without a path, events go to stderr's root handlers like any other log line."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in logger.handlers):
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(JsonLines())
            logger.addHandler(handler)
        logger.propagate = False
    return logger


def business_keys(workflow_id: str, args: Sequence[Any]) -> dict[str, str]:
    """The keys of one step: from its input (top level, then nested models), then from the
    workflow id (`engagement-<opportunity id>`)."""
    found: dict[str, str] = {}

    def take(obj: Any) -> None:
        for key in KEYS:
            value = getattr(obj, key, None)
            if key not in found and isinstance(value, str) and value:
                found[key] = value

    for arg in args:
        take(arg)
    for arg in args:
        for name in getattr(type(arg), "model_fields", {}):
            take(getattr(arg, name, None))
    if "opportunity_id" not in found and workflow_id.startswith(ENGAGEMENT_PREFIX):
        found["opportunity_id"] = opportunity_of(workflow_id)
    return found


def correlation_id(run_id: str) -> str:
    """The current trace id (the TracingInterceptor's span, propagated from the API request
    that started the work); without tracing, the workflow run, which ties its steps together."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else run_id


class _Activities(ActivityInboundInterceptor):
    def __init__(self, nxt: ActivityInboundInterceptor, logger: logging.Logger) -> None:
        super().__init__(nxt)
        self._log = logger

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        started = time.monotonic()
        base = {
            "step": info.activity_type,
            "workflow_id": info.workflow_id,
            "workflow_type": info.workflow_type,
            "run_id": info.workflow_run_id,
            **business_keys(info.workflow_id or "", input.args),
            "correlation_id": correlation_id(info.workflow_run_id or ""),
            "attempt": info.attempt,
        }
        try:
            result = await super().execute_activity(input)
        except BaseException as error:
            failed = {
                **base,
                "event": "step.failed",
                "duration_ms": round((time.monotonic() - started) * 1000),
                "error_type": error.type if isinstance(error, ApplicationError) else type(error).__name__,
                "error": str(error)[:300],
                "retryable": not (isinstance(error, ApplicationError) and error.non_retryable),
            }
            self._log.warning("%s failed", info.activity_type, extra={"event": failed})
            raise
        done = {**base, "event": "step.completed", "duration_ms": round((time.monotonic() - started) * 1000)}
        self._log.info("%s completed", info.activity_type, extra={"event": done})
        return result


class BusinessEvents(Interceptor):
    """Worker interceptor: a `step.completed` / `step.failed` line per activity execution."""

    def __init__(self, path: Path | None = None) -> None:
        self._log = setup_event_log(path)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Activities(next, self._log)
