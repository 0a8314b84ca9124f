"""The D365 simulator's settings: the shared ones plus the tenant, the resource and the companies."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from .._settings import SimSettings

DEFAULT_TENANT = "8d2c4e6f-0a1b-4c3d-9e8f-0d2d36500001"  # a GUID-shaped dev tenant


class DynamicsSettings(SimSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore")

    tenant: str = DEFAULT_TENANT
    resource: str | None = None  # the environment URL tokens are issued for; default: the public URL
    companies: str = "uk01,ie01"  # dataAreaIds; the first is the default company of the API user
    page_size: int = Field(10_000, ge=1, le=10_000)  # D365 pages OData results by 10,000
    drop_lost_responses: bool = False  # a real server closes the connection (set by the CLI)

    def company_list(self) -> list[str]:
        return [c.strip().lower() for c in self.companies.split(",") if c.strip()]

    def resource_url(self) -> str:
        return (self.resource or self.base_url()).rstrip("/")
