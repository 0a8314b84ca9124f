"""Canonical totals of the source sync: one project's totals in one system's extract."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

MAX_RECORD_IDS = 50  # record ids kept per project and extract (the smallest, sorted)


class ExtractProject(BaseModel):
    project_id: str
    legal_entity: str
    currency: str | None = None


class ProjectTotal(BaseModel):
    """One project's totals in one extract; `record_ids` are the smallest MAX_RECORD_IDS."""

    project_id: str
    hours: Decimal = Decimal(0)
    time_amount: Decimal | None = None
    invoice_total: Decimal | None = None
    booking_total: Decimal | None = None
    currency: str | None = None
    records: int = 0
    record_ids: list[str] = Field(default_factory=list)

    def add_record(self, record_id: str) -> None:
        self.records += 1
        self.record_ids.append(record_id)

    def finish(self) -> ProjectTotal:
        self.record_ids = sorted(set(self.record_ids))[:MAX_RECORD_IDS]
        return self


class Bookings(BaseModel):
    totals: list[ProjectTotal]
    unlinked: list[str]  # closed-won deals with no project: never provisioned (see their engagement)
