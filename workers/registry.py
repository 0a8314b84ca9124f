"""Which workflows and activities run on which task queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.composition import ActivitySet
from workflows.engagement import EngagementWorkflow

WORKFLOWS: list[type] = [EngagementWorkflow]


def activities_by_role(acts: ActivitySet) -> dict[str, list[Callable[..., Any]]]:
    return {
        "workflows": [acts.config.deal_rules],  # local activities run on the workflow worker
        "crm": [acts.crm.read_opportunity, acts.crm.write_links],
        "psa": [acts.psa.create_project, acts.psa.remove_project],
        "erp": [acts.erp.upsert_customer, acts.erp.create_sales_order, acts.erp.cancel_sales_order],
    }
