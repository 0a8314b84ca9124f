"""The one retry-policy shape for activities: exponential backoff from 1 s to 60 s, a
number of attempts per kind of work. Typed business errors (non-retryable
`ApplicationError`s) stop at once whatever the policy says."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

VENDOR_ATTEMPTS = 10  # one vendor call, one close window
PAGE_ATTEMPTS = 20  # a page of a batch run (posting, source sync): worth waiting out an outage


def retry_policy(maximum_attempts: int = VENDOR_ATTEMPTS) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=maximum_attempts,
    )
