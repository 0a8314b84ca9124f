"""The FastAPI application factory: settings, auth, Temporal client, routers, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import engagements
from api.auth import TokenTable
from api.problems import install_problem_handlers
from api.settings import ApiSettings
from workers.temporal_client import connect


def create_app(settings: ApiSettings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    tokens = TokenTable.from_settings(settings)  # refuses insecure config before serving anything

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "temporal", None) is None:
            app.state.temporal = await connect(settings)
        yield

    app = FastAPI(title="d2r — deal to revenue", version="0.1.0", lifespan=lifespan,
                  description="Start and follow engagements from closed deal to recognized revenue. "
                              "Every /v1 endpoint needs `Authorization: Bearer <token>`.")
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.temporal = temporal
    install_problem_handlers(app)
    app.include_router(engagements.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
