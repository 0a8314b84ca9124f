"""How an update validator says no: an ApplicationError whose type tells the API the status
(InvalidRequest -> 422: the request does not fit this engagement; Conflict -> 409: the
engagement's state forbids it now) and whose first detail names the field. A validator's
refusal is synchronous and leaves nothing in the workflow's history."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

INVALID_REQUEST = "InvalidRequest"
CONFLICT = "Conflict"


def invalid_request(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, {"field": field}, type=INVALID_REQUEST, non_retryable=True)


def conflict(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, {"field": field}, type=CONFLICT, non_retryable=True)
