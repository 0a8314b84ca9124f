"""The FastAPI application factory: settings, auth, Temporal client, routers, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from temporalio.client import Client

from api import codec, dev_issuer, engagements, lineage, master_data, period_close, reports, webhooks
from api.auth import Authenticator
from api.door import OpportunityReader
from api.problems import ProblemError, install_problem_handlers
from api.resume import resume
from api.settings import ApiSettings
from reporting.hub import ReportingHub
from security.codec import EncryptionCodec
from security.keys import KeyRing
from security.limits import BodySizeLimit, PrincipalRateLimiter
from security.production import api_findings, refuse_dev_material
from workers.composition import crm_reader
from workers.temporal_client import connect


def retry_waiting_workflow(client: Client) -> Callable[[dict[str, Any], str], Awaitable[None]]:
    """What `POST /v1/exceptions/<id>/retry` does: ask the waiting workflow to retry (refused,
    409, when it waits for no fix)."""

    async def retry(exception: dict[str, Any], by: str) -> None:
        workflow_id = exception.get("workflow_id")
        if not workflow_id:
            raise ProblemError(409, "Nothing to retry", "this exception names no workflow")
        await resume(client, workflow_id, by, "retry")

    return retry


def create_app(
    settings: ApiSettings | None = None, temporal: Client | None = None, crm: OpportunityReader | None = None
) -> FastAPI:
    settings = settings or ApiSettings()
    refuse_dev_material(settings, api_findings(settings))  # before serving anything
    authenticator = Authenticator.from_settings(settings)
    close_crm = None
    if crm is None and settings.salesforce is not None:
        crm, close_crm = crm_reader(settings.salesforce, settings.vendor_ca_file)
    ring = KeyRing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "temporal", None) is None:
            app.state.temporal = await connect(settings)
        hub = None
        if settings.database_url and getattr(app.state, "hub", None) is None:
            hub = await ReportingHub.connect(settings.database_url)
            app.state.hub = hub
        app.state.exception_retrier = retry_waiting_workflow(app.state.temporal)
        try:
            yield
        finally:
            if hub is not None:
                await hub.close()
            if close_crm is not None:
                await close_crm()

    # /docs and /redoc load Swagger UI and ReDoc from the installed package, never a CDN.
    app = FastAPIOffline(
        title="d2r — deal to revenue",
        version="0.1.0",
        lifespan=lifespan,
        description="Start and follow engagements from closed deal to recognized revenue. "
        "Every /v1 endpoint needs `Authorization: Bearer <token>`.",
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.rate_limiter = PrincipalRateLimiter(settings.rate_limit)
    app.state.temporal_codec = EncryptionCodec(ring) if ring else None
    app.state.temporal = temporal
    app.state.hub = None
    app.state.crm = crm  # asked at the door whether an opportunity exists (api/door.py)
    install_problem_handlers(app)
    app.include_router(engagements.router)
    app.include_router(period_close.router)
    app.include_router(reports.router)
    app.include_router(lineage.router)
    app.include_router(webhooks.router)
    app.include_router(master_data.router)
    app.include_router(codec.router)
    if settings.dev_issuer_key_file is not None and settings.profile == "dev" and settings.oidc_issuer:
        dev_issuer.mount(app, settings.dev_issuer_key_file, settings.oidc_issuer)
    # The Temporal Web UI calls the codec server from the browser: its origin only, with
    # credentials (the codec session cookie), never a wildcard.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
