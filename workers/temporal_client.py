"""The one way every process builds its Temporal client: encrypted pydantic converter + tracing."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from security.codec import data_converter
from security.production import codec_findings, refuse_dev_material, vendor_findings
from workers.settings import TemporalSettings


async def connect(settings: TemporalSettings) -> Client:
    # A worker (or any process) of a non-dev profile refuses dev material before connecting.
    refuse_dev_material(settings, codec_findings(settings) + vendor_findings(settings))
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=[TracingInterceptor()],
    )
