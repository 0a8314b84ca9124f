"""Connector errors become ApplicationErrors with a stable type and the right retry policy."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from connectors.errors import ConnectorError

P = ParamSpec("P")
R = TypeVar("R")


def to_application_error(error: ConnectorError) -> ApplicationError:
    return ApplicationError(
        str(error),
        {"system": error.system, "status": error.status, "vendor_code": error.vendor_code},
        type=error.type_name,
        non_retryable=not error.retryable,
        next_retry_delay=timedelta(seconds=error.retry_after) if error.retry_after else None,
    )


def translating_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity body so vendor failures surface typed in the Web UI."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ConnectorError as error:
            raise to_application_error(error) from error

    return wrapper
