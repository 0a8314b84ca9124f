"""Record the reference year with a reporting hub: `python -m tests.replay.record_engagement_fx`.

The engagement asks the hub for its rates (`fx.rates_on`) before each close that converts
(GBP invoices and revenue into USD): the command shape the worker version that brought the
hub's rates into the engagement runs. Re-record it only when that shape is meant to change
(and ship the change as a new worker version)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.workflows import scenario

HERE = Path(__file__).parent / "histories"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from contracts import search_attributes as sa

    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL},
        )
    )
    run = await scenario.run_reference_year(env, "006REF000000002AAA", with_hub=True)
    asked = run.fake.calls["fx.rates_on"]
    assert asked > 0, "the engagement never asked the hub for a rate"
    (HERE / "engagement_reference_year_hub_rates.json").write_text(run.history.to_json())
    print(f"recorded engagement_reference_year_hub_rates: {len(run.history.events)} events, {asked} rate lookups")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
