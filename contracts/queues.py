"""Task queues: workflows on one queue, activities on one queue per outside system (DESIGN §5)."""

from __future__ import annotations

from pydantic import BaseModel


class TaskQueues(BaseModel):
    crm: str = "d2r-crm"
    psa: str = "d2r-psa"
    erp: str = "d2r-erp"
    reporting: str | None = None  # set when a reporting hub is configured
