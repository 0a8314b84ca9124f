from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes as sa
from tests.conftest import TEST_CONVERTER, wheel_binary


async def _start() -> WorkflowEnvironment:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    # The time-skipping server has no search_attributes option: register them first,
    # or every upsert fails the workflow task.
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=environment.client.namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in sa.ALL},
        )
    )
    return environment


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await _start()
    yield environment
    await environment.shutdown()


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of its own, for tests that skip months of time: other tests' idle
    workflows (whose workers are gone) cannot hold its clock back."""
    environment = await _start()
    yield environment
    await environment.shutdown()
