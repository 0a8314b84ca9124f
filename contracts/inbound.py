"""InboundEventWorkflow's input and result (a vendor event routed to its engagement)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts.queues import TaskQueues


class InboundEvent(BaseModel):
    source: str  # "salesforce" | "netsuite"
    event_id: str
    type: str
    data: dict[str, Any]
    queues: TaskQueues = TaskQueues()
    erp_instance: str | None = None


class InboundResult(BaseModel):
    routed_to: list[str]
    note: str
