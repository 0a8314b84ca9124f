"""Configuration the workflows must read deterministically: served by a local activity,
so a changed setting reaches a workflow as a recorded result, never as a hidden input."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from domain.deal import DealRules


class DealRulesInput(BaseModel):
    opportunity_id: str


class ConfigActivities:
    def __init__(self, rules: DealRules) -> None:
        self._rules = rules

    @activity.defn(name="config.deal_rules")
    async def deal_rules(self, data: DealRulesInput) -> DealRules:
        return self._rules
