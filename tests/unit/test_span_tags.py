"""Activities put the business keys of their input on the current span."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from activities.errors import tag_span
from contracts.erp import UpsertCustomerInput
from domain.deal import DealRules, Engagement, validate_deal
from tests.workflows.fakes import good_opportunity


def test_business_keys_become_span_attributes() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engagement = validate_deal(good_opportunity(), DealRules(legal_entities={"US01": "USD"}))
    assert isinstance(engagement, Engagement)
    with provider.get_tracer("test").start_as_current_span("activity"):
        tag_span(UpsertCustomerInput(engagement=engagement, external_id="d2r:customer:x"))
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["d2r.opportunity_id"] == engagement.opportunity_id
    assert span.attributes["d2r.customer_id"] == engagement.customer.customer_id
    assert span.attributes["d2r.legal_entity"] == "US01"
