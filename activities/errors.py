"""Connector errors become ApplicationErrors with a stable type and the right retry policy."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import ParamSpec, TypeVar

from opentelemetry import trace
from temporalio.exceptions import ApplicationError

from connectors.errors import ConnectorError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def to_application_error(error: ConnectorError) -> ApplicationError:
    return ApplicationError(
        str(error),
        {"system": error.system, "status": error.status, "vendor_code": error.vendor_code},
        type=error.type_name,
        non_retryable=not error.retryable,
        next_retry_delay=timedelta(seconds=error.retry_after) if error.retry_after else None,
    )


BUSINESS_KEYS = ("opportunity_id", "customer_id", "project_id", "contract_id", "legal_entity")


def tag_span(data: object) -> None:
    """Put the business keys an activity input carries on the current span, so a trace
    can be found by opportunity, customer, project, contract or legal entity."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for source in (data, getattr(data, "engagement", None), getattr(data, "lineage", None)):
        for key in BUSINESS_KEYS:
            value = getattr(source, key, None) if source is not None else None
            if isinstance(value, str) and value:
                span.set_attribute(f"d2r.{key}", value)
    customer = getattr(getattr(data, "engagement", None), "customer", None)
    if customer is not None:
        span.set_attribute("d2r.customer_id", customer.customer_id)


def translating_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity body so vendor failures surface typed in the Web UI."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if args:
            tag_span(args[-1])
        try:
            return await fn(*args, **kwargs)
        except ConnectorError as error:
            raise to_application_error(error) from error

    return wrapper


async def refusals(
    items: Mapping[str, T], write: Callable[[T], Awaitable[object]], concurrency: int = 8
) -> dict[str, str]:
    """Write a window's items concurrently. A refusal for good (a non-retryable vendor or
    business error) is kept per item and returned; transient trouble fails the activity,
    whose retry repeats the (idempotent) writes."""
    gate = asyncio.Semaphore(concurrency)
    refused: dict[str, str] = {}

    async def one(key: str, item: T) -> None:
        async with gate:
            try:
                await write(item)
            except ConnectorError as error:
                if error.retryable:
                    raise
                refused[key] = f"{error.type_name}: {error}"[:500]
            except ApplicationError as error:
                if not error.non_retryable:
                    raise
                refused[key] = f"{error.type}: {error.message}"[:500]

    await asyncio.gather(*(one(k, v) for k, v in sorted(items.items())))
    return refused
