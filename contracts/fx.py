"""Inputs and results of the FX-rate sync: the ERPs' dated currency-rate records into the hub."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from contracts.queues import TaskQueues
from domain.fx import ChosenRate, FxLookup

FX_SYNC_SCHEDULE = "d2r-fx-sync-daily"
FX_SYNC_LOOKBACK_DAYS = 7  # a daily run re-reads a week, so a corrected rate is picked up


def fx_sync_workflow_id(day: date | str) -> str:
    """`fx-sync-<day>`: one sync of every ERP instance's rates per day (the API and tests
    start it under this id; the Schedule's runs are `fx-sync-scheduled-<fire time>`)."""
    return f"fx-sync-{day}"


FX_SYNC_SCHEDULED_ID = "fx-sync-scheduled"


class FxCursor(BaseModel):
    """Where the sync is: the ERP instance, the position in its rate records, and the
    first effective date read (fixed on the instance's first page)."""

    instance: str | None = None  # None: start with the first instance
    position: str | None = None
    since: date | None = None


class FxSyncInput(BaseModel):
    queues: TaskQueues = Field(default_factory=TaskQueues)
    # rates effective on or after this day; None: a week before each instance's newest
    # synced rate (everything, the first time)
    since: date | None = None
    page_size: int = Field(default=500, ge=1, le=1000)
    carried: FxSyncProgress | None = None  # set only by continue-as-new


class FxSyncPageInput(BaseModel):
    cursor: FxCursor
    since: date | None = None
    page_size: int = 500


class FxSyncPageResult(BaseModel):
    instance: str | None = None
    read: int = 0
    stored: int = 0  # rate rows the hub inserted or changed (0 on a repeat)
    next: FxCursor | None = None  # None: every instance is done
    skipped: str | None = None  # why nothing was read (no hub, an ERP without rate records)


class FxSyncProgress(BaseModel):
    cursor: FxCursor = Field(default_factory=FxCursor)
    pages: int = 0
    read: int = 0
    stored: int = 0
    instances: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class FxSyncResult(BaseModel):
    workflow_id: str
    progress: FxSyncProgress


class FxRatesInput(BaseModel):
    """The conversions an engagement's period run (or amendment) makes: the hub answers each
    with the rate its loaders use for that day."""

    conversions: list[FxLookup]


class FxRatesResult(BaseModel):
    rates: list[ChosenRate] = Field(default_factory=list)
    # asked for but without any rate in the hub: the engagement uses its reference rates
    missing: list[FxLookup] = Field(default_factory=list)


FxSyncInput.model_rebuild()
