"""API configuration (env D2R_*). Tokens map to a subject and roles."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from contracts.queues import TaskQueues
from security.tokens import OidcSettings
from workers.settings import TemporalSettings, VendorEndpoint

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
    entities: list[str] | None = None  # legal entities in scope; None = all


class ApiSettings(TemporalSettings):
    # Identity: OIDC/JWT bearer tokens from this issuer (security/tokens.py). Any OIDC
    # provider by settings alone: issuer, audience, and where its tokens keep roles/entities.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None  # default: from the issuer's discovery document
    oidc_algorithms: list[str] = ["RS256", "ES256"]
    oidc_leeway_seconds: int = 30
    oidc_subject_claim: str = "sub"
    oidc_roles_claim: str = "roles"
    oidc_entities_claim: str = "d2r_entities"
    oidc_role_map: dict[str, str] = {}
    oidc_jwks_refetch_cooldown_seconds: float = 30
    # The dev issuer (make run): serve its discovery document and JWKS under /dev-issuer.
    dev_issuer_key_file: Path | None = None
    # Static tokens (the dev tokens below and api_tokens) are an explicit dev option only.
    static_tokens: bool = False
    # token -> grant. Keys may be the token itself or "sha256:<hex digest of the token>",
    # so a production config file need not hold usable secrets.
    api_tokens: dict[str, TokenGrant] = {}
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    database_url: str | None = None
    reporting_task_queue: str = "d2r-reporting"  # used only when database_url (a hub) is set
    ui_base_url: str = "http://127.0.0.1:8233"  # the Temporal Web UI, for the dashboard's links

    def oidc(self) -> OidcSettings | None:
        if not self.oidc_issuer:
            return None
        return OidcSettings(
            issuer=self.oidc_issuer,
            audience=self.oidc_audience or "",
            jwks_url=self.oidc_jwks_url,
            algorithms=self.oidc_algorithms,
            leeway_seconds=self.oidc_leeway_seconds,
            subject_claim=self.oidc_subject_claim,
            roles_claim=self.oidc_roles_claim,
            entities_claim=self.oidc_entities_claim,
            role_map=self.oidc_role_map,
            jwks_refetch_cooldown_seconds=self.oidc_jwks_refetch_cooldown_seconds,
        )

    def queues(self) -> TaskQueues:
        """The activity queues an engagement started by this API uses."""
        return TaskQueues(
            crm=self.crm_task_queue,
            psa=self.psa_task_queue,
            erp=self.erp_task_queue,
            reporting=self.reporting_task_queue if self.database_url else None,
        )

    webhook_secret: str | None = None
    # One secret per webhook source ("salesforce", "netsuite"); a source not named here falls
    # back to webhook_secret (and, in dev, the simulators' dev secret).
    webhook_secrets: dict[str, str] = {}

    # Judged at the door (api/door.py): the open window of periods, around today's month.
    open_period_months_back: int = Field(default=12, ge=0, le=120)
    open_period_months_forward: int = Field(default=0, ge=0, le=12)
    # The legal entities that exist (code -> functional currency): the same setting the
    # workers read (D2R_LEGAL_ENTITIES), so both refuse the same unknown codes.
    legal_entities: dict[str, str] = {"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"}
    # The CRM, asked at the door whether an opportunity exists (same setting as the workers').
    salesforce: VendorEndpoint | None = VendorEndpoint(url="http://127.0.0.1:8301")
    # Limits at the door: requests per principal (limits syntax) and request body size.
    rate_limit: str = "1200/minute"
    max_body_bytes: int = 1_048_576
    # Browser origins allowed to call the API cross-origin: the Temporal Web UI (codec server).
    cors_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]
