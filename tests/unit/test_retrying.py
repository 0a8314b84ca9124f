"""One call retried on its own: transient errors retry (waiting what Retry-After asks),
the last attempt's error is raised, anything else is not retried at all."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from activities import retrying as retrying_module
from activities.retrying import CallRetry, retrying
from connectors.errors import RateLimitedError, UnavailableError, VendorValidationError


async def test_transient_failures_retry_and_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    # only retrying's own sleep: patching asyncio.sleep itself would turn every other task of
    # the session's event loop (a test server's tick loop, say) into a spin that never yields
    monkeypatch.setattr(retrying_module, "asyncio", SimpleNamespace(sleep=no_wait))
    answers: list[Exception | str] = [
        RateLimitedError("busy", system="erp", status=429, retry_after=3.0),
        UnavailableError("down", system="erp", status=503),
        "posted",
    ]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await retrying(call, CallRetry(attempts=5, first_delay=0.2)) == "posted"
    assert waits[0] == 3.0 and 0.1 <= waits[1] <= 0.4  # Retry-After, then jittered backoff


async def test_the_last_attempts_error_is_raised_and_refusals_are_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    # only retrying's own sleep: patching asyncio.sleep itself would turn every other task of
    # the session's event loop (a test server's tick loop, say) into a spin that never yields
    monkeypatch.setattr(retrying_module, "asyncio", SimpleNamespace(sleep=no_wait))
    calls = 0

    async def always_down() -> None:
        nonlocal calls
        calls += 1
        raise UnavailableError("down", system="erp", status=503)

    with pytest.raises(UnavailableError):
        await retrying(always_down, CallRetry(attempts=4))
    assert calls == 4

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise VendorValidationError("no", system="erp", status=400)

    calls = 0
    with pytest.raises(VendorValidationError):
        await retrying(refused)
    assert calls == 1
