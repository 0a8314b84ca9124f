"""Where a month-end window's per-engagement facts wait in the reporting hub while the window
runs (reporting/close_stage.py), so its activities pass ids instead of the facts.

A window's delivery (the PSA's time, expenses and milestones of each project) and its
outboxes (each engagement's ERP documents, CRM and PSA feedback and hub facts) weigh
kilobytes per engagement: carried in the window's payloads they would cap a window at a few
dozen engagements under the payload budget, and every window costs about a dozen Actions.
Kept in the hub, a window's payloads hold ids and counts, and windows take the widest size
whatever an engagement weighs."""

from __future__ import annotations

from pydantic import BaseModel

# The parts a window keeps: the PSA's delivery by project id, the engagements' outboxes by
# workflow id (each system's writer reads its own part of them).
DELIVERY = "delivery"
OUTBOX = "outbox"


class StagedWindow(BaseModel):
    """One window of one close run: `report_id` is the close's (workflow id and run id)."""

    report_id: str
    window: int
