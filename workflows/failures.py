"""Which exceptions raised in workflow code are business failures, and which are bugs.

- Business failures: the data broke a rule. `ValueError` (every domain error is one:
  AmendmentError, CreditMemoError, IllegalTransitionError, UnknownCurrencyError, a period
  that is no month, pydantic's ValidationError) and `ArithmeticError` (decimal's
  InvalidOperation or Overflow on an absurd amount). Where a step runs, the engagement
  catches them: it moves to NEEDS_ATTENTION with the reason and an open exception and waits
  for a person's retry or cancel; a change request (amendment, credit memo) that fails so
  is marked failed instead, and the engagement carries on. An activity that failed for
  good (ActivityError after its retries) is handled the same way.
- Bugs: everything else (TypeError, AttributeError, KeyError and IndexError, AssertionError,
  NameError, non-determinism). They fail the workflow task, which Temporal retries; they
  show as `TemporalReportedProblems` (and in `GET /v1/engagements?problem=true`) and are
  fixed by deploying corrected code, after which the task succeeds by itself.
- `ApplicationError` is the one way to fail a workflow on purpose (a month-end close for a
  period that is no month, an inbound event that cannot be read).
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

BUSINESS_FAILURES = (ValueError, ArithmeticError)
# What ends a step (and undoes its saga): a vendor call that failed for good, or a business failure.
STEP_FAILURES = (ActivityError, ValueError, ArithmeticError)


def failure_reason(error: BaseException) -> str:
    """`<type>: <message>` of an activity's final cause or of a business failure."""
    if isinstance(error, ActivityError) and error.cause is not None:
        cause = error.cause
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
        return f"{kind}: {getattr(cause, 'message', cause)}"
    return f"{type(error).__name__}: {error}"
