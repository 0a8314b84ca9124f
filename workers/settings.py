"""Worker configuration: one pydantic-settings object, from env (D2R_*) and an optional
.env-style file (D2R_ENV_FILE). Secrets are SecretStr, so they never reach a log line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.ownership import Ownership, default_ownership, load_ownership_file
from domain.reference_data import ReferenceData, default_reference_data, load_reference_data_file


class TemporalSettings(BaseSettings):
    """What every process needs to reach Temporal (shared by the API and the workers)."""

    model_config = SettingsConfigDict(
        env_prefix="D2R_", env_file=os.environ.get("D2R_ENV_FILE"), extra="ignore", env_nested_delimiter="__"
    )

    profile: str = "dev"  # anything else refuses dev material at start-up (security/production.py)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    workflow_task_queue: str = "d2r-workflows"
    crm_task_queue: str = "d2r-crm"
    psa_task_queue: str = "d2r-psa"
    erp_task_queue: str = "d2r-erp"
    otel_exporter: str = Field(default="none", pattern="^(none|console|otlp)$")
    otel_endpoint: str | None = None
    # Payload encryption (security/keys.py): a key file and/or inline keys; the current key
    # encrypts, all of them decrypt. None configured = plain payloads (dev only).
    codec_key_file: Path | None = None
    codec_keys: dict[str, SecretStr] = {}
    codec_current_key: str | None = None
    # The firm's legal entities, tax rates, FX rates and chart of accounts (TOML or JSON,
    # domain/reference_data.py); None: the demo firm's. When set, its legal entities are
    # the `legal_entities` every process validates against.
    reference_data_file: Path | None = None
    # A CA the vendor clients trust besides the public ones (PEM): `make run` with TLS sets
    # its local CA (.d2r/tls/ca.pem); a corporate TLS proxy's CA in production.
    vendor_ca_file: Path | None = None
    # Which system owns which master-data field (TOML, domain/ownership.py); None: the
    # shipped table (domain/ownership.toml). Read and checked at start.
    ownership_file: Path | None = None

    def ownership(self) -> Ownership:
        return default_ownership() if self.ownership_file is None else load_ownership_file(self.ownership_file)

    @model_validator(mode="after")
    def _ownership_is_honourable(self) -> TemporalSettings:
        self.ownership()  # a table d2r cannot honour is refused now, naming the line to fix
        return self

    def reference_data(self) -> ReferenceData:
        if self.reference_data_file is None:
            return default_reference_data()
        return load_reference_data_file(self.reference_data_file)

    @model_validator(mode="after")
    def _entities_from_the_reference_data(self) -> TemporalSettings:
        if self.reference_data_file is not None and hasattr(self, "legal_entities"):
            self.legal_entities = self.reference_data().entity_currencies()
        return self


class VendorEndpoint(BaseModel):
    url: str
    # the connector that speaks to it, by its key in connectors/registry.py; None: the
    # system's default vendor (registry.DEFAULT_VENDORS)
    vendor: str | None = None
    client_id: str = "d2r-dev"
    client_secret: SecretStr = SecretStr("d2r-dev-secret")
    timeout_seconds: float = 30.0
    options: dict[str, str] = {}  # vendor-specific settings (D365: tenant, resource, token_url)
    # Certificate-signed logins: NetSuite M2M (client assertion; key_id = the certificate
    # id), Salesforce JWT bearer (when `username` is set). `make run` writes the dev pair.
    private_key_file: Path | None = Path(".d2r/keys/jwt-dev.key")
    key_id: str | None = "d2r-dev-cert"
    username: str | None = None
    # NetSuite token-based auth (options auth=tba, account_id, token_id): the access token's secret
    token_secret: SecretStr | None = None


class QueueLimits(BaseModel):
    """Per-system throttle: each vendor's own rate limit and concurrency, so one slow
    system only slows its own queue."""

    max_concurrent: int = 20
    # The whole task queue's rate (every worker process together), set by the server: the
    # vendor's published limit, e.g. D2R_ERP_LIMITS__MAX_PER_SECOND=20. None: unlimited.
    max_per_second: float | None = None
    pollers: int = Field(default=5, ge=1)  # concurrent long polls on the queue (SDK default 5)


# What one cached engagement adds to a workflow worker's RSS, and what the worker holds warm
# before any, as bench/bench_hold.py measured them at 10,000 open (README, "Figures"): the
# default cache is what fits in the memory budget at that cost. 136 KiB before engagements
# published their view in the memo: the SDK keeps each run's memo (its view as JSON) in the
# run's info, ~9 KiB more.
KIB_PER_CACHED_ENGAGEMENT = 145
WARM_WORKER_MIB = 140
# The part of the budget the cache may fill: closes, GETs and replays allocate above it.
CACHE_SHARE_OF_MEMORY = 0.9


class WorkflowWorkerLimits(BaseModel):
    """How much workflow work one worker process holds (D2R_WORKFLOW_LIMITS__*).

    An open engagement costs ~145 KiB of RSS while its run is cached (README, "Figures"), so
    the cache is sized from the process's memory budget, `memory_mib` (1 GiB: about 5,500
    engagements cached). The rest of the open engagements are not in memory: one evicted
    from the cache replays its history on its next task (a close, a signal, a query of it
    mid-step; a GET of a settled engagement reads its published view and needs no worker),
    which costs CPU and latency, not memory. So one process holds 10,000 open engagements in 1 GiB;
    with more memory, raise `memory_mib` (or set `max_cached_workflows`) and fewer replay.
    For throughput, run more worker processes on the same task queues: Temporal shares the
    work and each process caches only the workflows it serves (docs/operations.md, "Scaling out").
    """

    memory_mib: int = Field(default=1024, ge=256)
    # None: what fits in memory_mib (cache_size); a number overrides it.
    max_cached_workflows: int | None = Field(default=None, ge=0)
    # Workflow tasks are pure Python under one GIL: more in flight only lengthens each one.
    max_concurrent_tasks: int = Field(default=40, ge=2)
    pollers: int = Field(default=5, ge=2)
    # A task waits this long for the process that caches its workflow before any worker
    # takes it (and replays it); also how long a dead worker's workflows wait (SDK default).
    sticky_schedule_to_start_seconds: float = Field(default=10.0, gt=0)
    # "passthrough": d2r's own packages (workflows, contracts, domain) are imported once
    # for every run instead of once per run; "strict": the SDK's default sandbox, which
    # re-imports the workflow module for every new run (the tests always run strict);
    # "none": no sandbox, about 40 % less workflow-task CPU and ~8 KiB less per open
    # engagement (README, "Figures"), with determinism then guarded only by the tests and
    # the replay tests, which run sandboxed.
    sandbox: Literal["passthrough", "strict", "none"] = "passthrough"

    def cache_size(self) -> int:
        """Workflow runs the process caches: the setting, else what fits in the memory budget."""
        if self.max_cached_workflows is not None:
            return self.max_cached_workflows
        room_mib = self.memory_mib * CACHE_SHARE_OF_MEMORY - WARM_WORKER_MIB
        return max(0, int(room_mib * 1024 / KIB_PER_CACHED_ENGAGEMENT))


class WorkerSettings(TemporalSettings):
    roles: str = "workflows,crm,psa,erp,reporting"  # which task queues this process polls
    workflow_limits: WorkflowWorkerLimits = WorkflowWorkerLimits()
    salesforce: VendorEndpoint = VendorEndpoint(url="http://127.0.0.1:8301")
    # PSA instances by name; empty: the default PSA in the CRM's org (one instance, "default")
    psa_instances: dict[str, VendorEndpoint] = {}
    psa_routing: dict[str, str] = {}  # legal entity -> PSA instance name
    psa_default_instance: str | None = "default"
    erp_instances: dict[str, VendorEndpoint] = {"default": VendorEndpoint(url="http://127.0.0.1:8302")}
    erp_routing: dict[str, str] = {}  # legal entity -> ERP instance name
    erp_default_instance: str | None = "default"
    legal_entities: dict[str, str] = {"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"}
    crm_limits: QueueLimits = QueueLimits(max_concurrent=20, max_per_second=50)
    psa_limits: QueueLimits = QueueLimits(max_concurrent=20, max_per_second=50)
    erp_limits: QueueLimits = QueueLimits(max_concurrent=10, max_per_second=20)
    reporting_task_queue: str = "d2r-reporting"
    ui_base_url: str = "http://127.0.0.1:8233"  # Temporal Web UI, for exception links
    reporting_limits: QueueLimits = QueueLimits(max_concurrent=10, max_per_second=None)
    hub_database_url: str | None = None  # the reporting hub (posting writes time facts, close reconciles)
    health_port: int | None = None  # serve /healthz on 127.0.0.1:<port> when set
    # business events, one JSON line per step (workers/business_events.py); None: the process log
    events_log: Path | None = None
    # Temporal Worker Deployment: every worker of this process polls as <deployment_name>/<build_id>
    # (docs/operations.md, "Rolling out a new worker version"). One build id per release.
    deployment_name: str = Field(default="d2r", pattern=r"^[^.\s]+$")  # "." separates it from the build id
    build_id: str = Field(default="dev", min_length=1)
    # who makes a version current: `when_unset` takes a fresh deployment, `always` is for a
    # single-worker dev stack, `never` leaves it to the operator's set-current-version
    set_current_version: Literal["never", "when_unset", "always"] = "when_unset"

    def role_set(self) -> set[str]:
        return {r.strip() for r in self.roles.split(",") if r.strip()}
