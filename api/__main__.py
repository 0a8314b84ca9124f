"""`python -m api`: serve the API with uvicorn on the configured loopback address."""

from __future__ import annotations

import uvicorn
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from api.app import create_app
from api.settings import ApiSettings
from security import redact
from security.production import InsecureConfigurationError
from workers.telemetry import instrument_httpx, setup_tracing


def main() -> None:
    settings = ApiSettings()
    setup_tracing("d2r-api", settings.otel_exporter, settings.otel_endpoint)
    instrument_httpx()
    try:
        app = create_app(settings)
    except InsecureConfigurationError as refused:
        raise SystemExit(str(refused)) from None  # the list of findings, without a traceback
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")
    config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="info")
    # uvicorn has configured its loggers now: blank tokens in access lines (`?token=`) and errors.
    redact.install("uvicorn", "uvicorn.access", "uvicorn.error")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
