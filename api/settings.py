"""API configuration (env D2R_*). Tokens map to a subject and roles."""

from __future__ import annotations

from pydantic import BaseModel

from workers.settings import TemporalSettings
from workflows.engagement_models import TaskQueues

ROLES = frozenset({"sales_ops", "delivery_ops", "finance", "integration_admin", "auditor"})

# Accepted only by the dev profile; a non-dev profile refuses to start if any is configured.
DEV_TOKENS: dict[str, tuple[str, frozenset[str]]] = {
    "dev-sales-ops": ("dev-sales-ops", frozenset({"sales_ops"})),
    "dev-delivery-ops": ("dev-delivery-ops", frozenset({"delivery_ops"})),
    "dev-finance": ("dev-finance", frozenset({"finance"})),
    "dev-integration-admin": ("dev-integration-admin", frozenset({"integration_admin"})),
    "dev-auditor": ("dev-auditor", frozenset({"auditor"})),
}


class TokenGrant(BaseModel):
    subject: str
    roles: list[str]


class ApiSettings(TemporalSettings):
    profile: str = "dev"
    # token -> grant. Keys may be the token itself or "sha256:<hex digest of the token>",
    # so a production config file need not hold usable secrets.
    api_tokens: dict[str, TokenGrant] = {}
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    database_url: str | None = None
    reporting_task_queue: str = "d2r-reporting"  # used only when database_url (a hub) is set

    def queues(self) -> TaskQueues:
        """The activity queues an engagement started by this API uses."""
        return TaskQueues(
            crm=self.crm_task_queue,
            psa=self.psa_task_queue,
            erp=self.erp_task_queue,
            reporting=self.reporting_task_queue if self.database_url else None,
        )

    webhook_secret: str | None = None
