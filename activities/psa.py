"""PSA activities: the project shell from the service-package template, and its undo."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.errors import translating_errors
from connectors.ports import ProjectRef, PsaPort
from domain.deal import Engagement


class CreateProjectInput(BaseModel):
    engagement: Engagement
    external_id: str


class RemoveProjectInput(BaseModel):
    external_id: str


class RemoveProjectResult(BaseModel):
    removed: bool


class PsaActivities:
    def __init__(self, psa: PsaPort) -> None:
        self._psa = psa

    @activity.defn(name="psa.create_project")
    @translating_errors
    async def create_project(self, data: CreateProjectInput) -> ProjectRef:
        return await self._psa.create_project(data.engagement, data.external_id)

    @activity.defn(name="psa.remove_project")
    @translating_errors
    async def remove_project(self, data: RemoveProjectInput) -> RemoveProjectResult:
        return RemoveProjectResult(removed=await self._psa.remove_project(data.external_id))
