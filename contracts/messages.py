"""Names of the signals, updates and queries workflows answer: callers outside the workflow
(API, activities, other workflows) use these, so a renamed handler breaks at import time."""

from __future__ import annotations

# EngagementWorkflow
VIEW = "view"  # query
REVALIDATE = "revalidate"  # signal: the CRM was fixed
RETRY = "retry"  # signal: the outside trouble is over
RESUME = "resume"  # update: retry or revalidate the step that waits for a fix (refused otherwise)
CANCEL = "cancel"  # signal
DECIDE = "decide"  # update: a person's decision on an approval
DECISION = "decision"  # signal: the same, for systems that can only signal
CLOSE_PERIOD = "close_period"  # update: billing and revenue of a period
REQUEST_AMENDMENT = "request_amendment"  # update
REQUEST_CREDIT_MEMO = "request_credit_memo"  # update
PAYMENT_RECEIVED = "payment_received"  # signal
MILESTONE_COMPLETED = "milestone_completed"  # signal
INVOICES_OVERDUE = "invoices_overdue"  # signal: the daily receivables sweep
OUTBOX_FAILED = "outbox_failed"  # signal: the month-end batch could not write the close's outbox
DELIVERY_COMPLETE = "delivery_complete"  # signal

# PeriodCloseWorkflow
REPORT = "report"  # query
APPROVE_LOCK = "approve_lock"  # update
CANCEL_CLOSE = "cancel_close"  # update: stop the month-end before its lock

# TimeAndExpensePostingWorkflow, SourceSyncWorkflow
PROGRESS = "progress"  # query
