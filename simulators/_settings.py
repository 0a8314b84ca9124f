"""Settings shared by both simulators (pydantic-settings, env prefix SIM_)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"d2r-dev-webhook-secret-0123456789").decode()


class RejectRule(BaseModel):
    """Refuse every vendor call that matches, for good, with the vendor's own 4xx error.

    `path` and `body` are regular expressions searched (`re.search`) in the decoded
    request path and the UTF-8 request body; `method` is an HTTP method or `*`."""

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    path: str = ""
    body: str | None = None
    status: int = Field(400, ge=400, le=499)
    code: str | None = None  # vendor error code; default: the vendor's validation error
    message: str = "Refused by a simulated validation rule"

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        return v.upper()

    @field_validator("path", "body")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression {v!r}: {e}") from e
        return v

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self.path and re.search(self.path, path) is None:
            return False
        return self.body is None or re.search(self.body, body.decode("utf-8", "replace")) is not None


class FaultConfig(BaseModel):
    """Fault knobs. Rates are probabilities in [0, 1]; decisions come from a seeded RNG."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0)
    latency_jitter_ms: float = Field(0, ge=0)
    error_rate: float = Field(0, ge=0, le=1)
    error_status: int = Field(500, ge=500, le=599)
    throttle_rate: float = Field(0, ge=0, le=1)
    throttle_burst: int = Field(0, ge=0)  # the next N vendor requests are throttled
    retry_after_s: int = Field(1, ge=0)
    outage_seconds: float = Field(0, ge=0)  # outage window starting now
    outage_until: float = Field(0, ge=0)  # epoch seconds; 0 = none
    expire_tokens: bool = False  # one-shot: every issued token expires now
    token_ttl: float | None = Field(None, ge=0)  # overrides the TTL of tokens issued from now
    response_lost_rate: float = Field(0, ge=0, le=1)  # write commits, response is lost
    response_lost_delay_s: float = Field(0, ge=0)  # hang this long before the 504
    slow_rate: float = Field(0, ge=0, le=1)
    slow_delay_s: float = Field(0, ge=0)
    max_concurrency: int = Field(0, ge=0)  # NetSuite: 429 over this many in flight; 0 = off
    webhook_duplicate_rate: float = Field(0, ge=0, le=1)
    webhook_reorder: bool = False
    reject: list[RejectRule] = Field(default_factory=list)  # calls refused for good (4xx)
    seed: int | None = None


class SimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 0
    db: str = ":memory:"
    seed: str = "none"  # demo | none | bench
    seed_opportunities: int = 10_000
    seed_time_entries: int = 1_000_000
    instance: str = "default"
    subsidiaries: str = "US01,UK01,DE01,JP01"  # NetSuite: which legal entities to seed
    public_url: str | None = None  # base URL put in instance_url / Location headers
    client_id: str = "d2r-dev"
    client_secret: str = "d2r-dev-secret"
    # The integration's registered certificate (PEM certificate or public key) that signed
    # JWTs are verified against: NetSuite client assertions, Salesforce JWT bearer.
    jwt_certificate: str = ".d2r/keys/jwt-dev.crt"
    jwt_key_id: str = "d2r-dev-cert"  # NetSuite: the M2M mapping's Certificate ID (the JWT's kid)
    jwt_username: str = "integration@d2r.dev"  # Salesforce: the pre-authorised user (JWT sub)
    token_ttl: float = 7200
    page_size: int = Field(2000, ge=1, le=2000)
    daily_limit: int = 5_000_000
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_poll_s: float = 0.2
    faults: FaultConfig = Field(default_factory=FaultConfig)
    quiet: bool = False
    # Optional TLS (PEM files, e.g. from a local CA such as trustme): https-only clients work.
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    # NetSuite: the account's date format (General Preferences), in which SuiteQL returns dates
    netsuite_date_format: str = "M/D/YYYY"
    # NetSuite token-based auth (OAuth 1.0a): the realm, the integration record's consumer
    # key/secret and the integration role's access token (dev values; real ones are 64 hex)
    netsuite_account_id: str = "1234567_SB1"
    netsuite_consumer_key: str = "d2rdevconsumerkey00000000000000000000000000000000000000000000000"
    netsuite_consumer_secret: str = "d2rdevconsumersecret00000000000000000000000000000000000000000000"
    netsuite_token_id: str = "d2rdevtokenid000000000000000000000000000000000000000000000000000"
    netsuite_token_secret: str = "d2rdevtokensecret00000000000000000000000000000000000000000000000"

    @field_validator("faults", mode="before")
    @classmethod
    def _faults_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    def base_url(self) -> str:
        scheme = "https" if self.tls_certfile else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")
