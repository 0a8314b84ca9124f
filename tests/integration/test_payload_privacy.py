"""No business data in Temporal's hands: after a real engagement on the dev server, neither
the histories nor the dev server's SQLite file contain a seeded customer name or tax id,
while d2r itself (through the codec) still reads them."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from simulators.salesforce.seed import ACCOUNTS
from tests.integration.conftest import Stack, eventually
from tests.integration.test_engagement_path import AUDITOR, SALES, seed_info, view_in_stage

pytestmark = pytest.mark.integration

CUSTOMER_NAMES = [name for name, *_ in ACCOUNTS]
TAX_IDS = [f"TAX-{country}-{1000 + i}" for i, (_, _, country, *_) in enumerate(ACCOUNTS, 1)]


async def test_histories_and_the_server_database_hold_no_customer_names_or_tax_ids(stack: Stack) -> None:
    info = await seed_info(stack)
    opportunity_id = info["opportunities"]["valid"]["uk01_tm"]
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert started.status_code in (200, 202), started.text
    await eventually(lambda: view_in_stage(stack, opportunity_id, "IN_DELIVERY"))

    # Every history on the server, as stored (fetched raw: the SDK does not decode history).
    histories = [
        (await stack.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()).to_json()
        async for wf in stack.client.list_workflows()
    ]
    assert histories, "the dev server holds no workflow at all"
    stored = "\n".join(histories)
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in stored  # base64 of "binary/encrypted": payloads are sealed
    found = [s for s in CUSTOMER_NAMES + TAX_IDS if s in stored]
    assert found == [], f"plaintext business data in histories: {found}"

    # The server's own database file (and its write-ahead log), byte for byte.
    db = b"".join(p.read_bytes() for p in stack.temporal_db.parent.glob(stack.temporal_db.name + "*"))
    assert opportunity_id.encode() in db  # positive control: search attributes are stored in clear
    leaked = [s for s in CUSTOMER_NAMES + TAX_IDS if s.encode() in db]
    assert leaked == [], f"plaintext business data in the dev server database: {leaked}"

    # d2r still reads everything: the API's view comes back decrypted.
    view = (await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)).json()
    assert view["customer_id"]
    history = await stack.client.get_workflow_handle(f"engagement-{opportunity_id}").fetch_history()
    started_event = history.events[0].workflow_execution_started_event_attributes
    sealed: Payload = started_event.input.payloads[0]
    assert sealed.metadata["encoding"] == b"binary/encrypted"
    opened = await stack.client.data_converter.decode([sealed], [dict])
    assert opened[0]["opportunity_id"] == opportunity_id
    # ...and the names really are in there, sealed: the activity results, decrypted, hold them.
    results = [
        e.activity_task_completed_event_attributes.result.payloads[0]
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
        and e.activity_task_completed_event_attributes.result.payloads
    ]
    codec = stack.client.data_converter.payload_codec
    assert codec is not None
    plain = b"".join(p.data for p in await codec.decode(results))
    assert any(name.encode() in plain for name in CUSTOMER_NAMES)
