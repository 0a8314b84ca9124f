"""One call, retried on its own: so a page of many vendor calls survives a vendor that
fails one call in ten, instead of failing (and redoing) the whole page whenever any of
them does.

Only transient trouble retries (`RetryableError`: 5xx, 429, timeouts, transport errors),
waiting what the vendor's `Retry-After` asks (capped) or a jittered exponential backoff;
after the last attempt the error is raised, and the caller decides: park the record as
an exception (a later run picks it up) or, where nothing can be decided without the
answer, let the activity fail so Temporal retries it. Every d2r write is an idempotent
upsert by external id, so repeating one whose response was lost never duplicates it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class CallRetry:
    attempts: int = 6  # at 10 % transient failures, 1 call in a million still fails after these
    first_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 30.0  # a vendor asking for longer is better served by the activity's retry


async def retrying(call: Callable[[], Awaitable[T]], policy: CallRetry = CallRetry()) -> T:
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except RetryableError as error:
            if attempt == policy.attempts:
                raise
            if error.retry_after is not None:
                delay = min(error.retry_after, policy.max_retry_after)
            else:
                delay = min(policy.max_delay, policy.first_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
