"""Judged at the door: the checks every request passes before anything durable starts.

What the API can judge alone lives here, in one place: periods are real months inside
the open window, dates inside it, legal entities known to the configuration, the
opportunity present in the CRM. What only an engagement can judge (an invoice line's
remaining amount, a contract line that exists) runs in the workflow's update validators,
whose refusals `refusal_problem` turns into the same problem+json shape.

The open window is configured, around today: from `open_period_months_back` months
before the current month to `open_period_months_forward` months after it (settings
`D2R_OPEN_PERIOD_MONTHS_BACK` / `_FORWARD`). The ERP's own period lock still applies
inside it (a locked period refuses postings there); the window keeps a careless or
hostile caller from ever reaching the ERP with a document dated in 1130 or 2099.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.problems import ProblemError
from connectors.errors import ConnectorError, NotFoundError
from domain.deal import OpportunitySnapshot
from domain.periods import period_end, period_of, period_start

PERIOD_SHAPE = re.compile(r"^\d{4}-\d{2}$")
# Problem types (RFC 9457 `type`): stable names a client can branch on.
INVALID = "urn:d2r:problem:invalid-input"
OUTSIDE_WINDOW = "urn:d2r:problem:outside-open-window"
UNKNOWN = "urn:d2r:problem:unknown-reference"
REFUSED = "urn:d2r:problem:refused-by-engagement"


class OpportunityReader(Protocol):
    """The one CRM read the door needs (the CRM connector satisfies it)."""

    async def read_opportunity(self, opportunity_id: str) -> object: ...


def invalid(field: str, message: str, *, type_: str = INVALID, title: str = "Invalid request") -> ProblemError:
    """A 422 naming the field and the reason, in the shape of request-validation errors."""
    return ProblemError(422, title, f"{field}: {message}", type_=type_, errors=[{"field": field, "message": message}])


@dataclass(frozen=True)
class OpenWindow:
    """The periods a document may be dated in: first..last inclusive, `YYYY-MM`."""

    first: str
    last: str

    @classmethod
    def around(cls, today: date, months_back: int, months_forward: int) -> OpenWindow:
        def shifted(months: int) -> str:
            index = today.year * 12 + today.month - 1 + months
            return f"{index // 12:04d}-{index % 12 + 1:02d}"

        return cls(first=shifted(-months_back), last=shifted(months_forward))

    def check_period(self, period: str, field: str) -> str:
        if not PERIOD_SHAPE.match(period):
            raise invalid(field, f"{period!r} is not a period; use YYYY-MM, e.g. {self.last}")
        year, month = int(period[:4]), int(period[5:])
        if not 1 <= month <= 12:
            raise invalid(field, f"{period!r} has no month {month:02d}; months are 01..12")
        if year < 1:
            raise invalid(field, f"{period!r} has no year 0000")
        if not self.first <= period <= self.last:
            raise invalid(
                field,
                f"period {period} is outside the open window {self.first}..{self.last}",
                type_=OUTSIDE_WINDOW,
                title="Outside the open window",
            )
        return period

    def check_date(self, day: date, field: str) -> date:
        if not period_start(self.first) <= day <= period_end(self.last):
            raise invalid(
                field,
                f"{day.isoformat()} (period {period_of(day)}) is outside the open window {self.first}..{self.last}",
                type_=OUTSIDE_WINDOW,
                title="Outside the open window",
            )
        return day


def check_legal_entity(legal_entity: str, known: dict[str, str], field: str = "legal_entity") -> str:
    if legal_entity not in known:
        raise invalid(
            field,
            f"unknown legal entity {legal_entity!r}; configured: {', '.join(sorted(known))}",
            type_=UNKNOWN,
            title="Unknown legal entity",
        )
    return legal_entity


async def check_opportunity(crm: OpportunityReader | None, opportunity_id: str) -> None:
    """404 with the CRM's own answer when the opportunity does not exist; 503 when the CRM
    cannot answer (a start must not go ahead on a guess)."""
    await read_opportunity(crm, opportunity_id)


async def read_opportunity(crm: OpportunityReader | None, opportunity_id: str) -> OpportunitySnapshot | None:
    """The opportunity as the CRM holds it (the start's summary is made from it), with the
    refusals of `check_opportunity`; None when no CRM is configured for this API (unit tests:
    the workflow's validation decides)."""
    if crm is None:
        return None
    try:
        found = await crm.read_opportunity(opportunity_id)
    except NotFoundError as missing:
        raise ProblemError(
            404,
            "Opportunity not found",
            f"the CRM has no opportunity {opportunity_id}",
            type_=UNKNOWN,
            errors=[{"field": "opportunity_id", "message": str(missing)}],
            crm_answer=str(missing),
        ) from missing
    except ConnectorError as trouble:
        if trouble.retryable:
            raise ProblemError(
                503,
                "CRM unavailable",
                f"the CRM could not be asked about opportunity {opportunity_id}: {trouble}",
                headers={"Retry-After": "30"},
            ) from trouble
        raise invalid("opportunity_id", f"the CRM refused it: {trouble}") from trouble
    return found if isinstance(found, OpportunitySnapshot) else None


# ---- refusals from update validators --------------------------------------------------------
def refusal_problem(error: WorkflowUpdateFailedError) -> ProblemError:
    """An engagement's update validator said no: 409 when the engagement's state forbids it
    (wrong stage, already requested), 422 when the request does not fit the engagement
    (unknown line, amount above what is left); the field it names comes along."""
    cause: Any = error.cause or error
    message = getattr(cause, "message", None) or str(cause)
    field = None
    status = 409
    if isinstance(cause, ApplicationError):
        details = list(cause.details or [])
        first = details[0] if details and isinstance(details[0], dict) else {}
        field = first.get("field")
        if cause.type == "InvalidRequest":
            status = 422
    errors = [{"field": field or "body", "message": message}]
    return ProblemError(status, "Refused by the engagement", message, type_=REFUSED, errors=errors)
