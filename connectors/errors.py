"""The small, typed error hierarchy every connector maps vendor failures into.

Retryable errors are transient (timeouts, 429, 5xx, lock contention): Temporal retries
the activity, honouring `retry_after`. Everything else is non-retryable: a person or a
code change must fix it, so retrying would only hide it.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of every connector failure; `type_name` is stable and becomes the
    ApplicationError type seen in the Temporal Web UI."""

    type_name = "ConnectorError"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        vendor_code: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.vendor_code = vendor_code
        self.details = details
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" [{self.vendor_code}]" if self.vendor_code else ""
        status = f" HTTP {self.status}" if self.status else ""
        return f"{self.system}{status}{code}: {self.message}"


class RetryableError(ConnectorError):
    type_name = "RetryableConnectorError"
    retryable = True


class RateLimitedError(RetryableError):
    type_name = "RateLimited"


class UnavailableError(RetryableError):
    type_name = "Unavailable"


class NonRetryableError(ConnectorError):
    type_name = "NonRetryableConnectorError"


class AuthenticationError(NonRetryableError):
    type_name = "AuthenticationFailed"


class VendorValidationError(NonRetryableError):
    type_name = "VendorValidationError"


class NotFoundError(NonRetryableError):
    type_name = "NotFound"


class DuplicateError(NonRetryableError):
    """Several records match one external id: the upsert cannot know which to update."""

    type_name = "MultipleMatches"


class PeriodLockedError(NonRetryableError):
    type_name = "PeriodLocked"


class LimitExceededError(RetryableError):
    """A daily/org API limit: retryable, but only after a long pause."""

    type_name = "ApiLimitExceeded"


class ConfigurationError(NonRetryableError):
    """d2r itself is misconfigured for this record (e.g. no ERP for a legal entity)."""

    type_name = "ConfigurationError"
