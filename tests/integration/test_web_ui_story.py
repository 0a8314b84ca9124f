"""The engagement's story in the Temporal Web UI itself, in headless Chromium (Debian's
`chromium`, driven by Playwright without a browser download of its own).

A dev server with its Web UI, whose remote codec is the API's codec server: every payload,
the summary and details included, is encrypted, and the page shows them in clear only
through the codec (a session cookie for an authorised person, "include cross-origin
credentials"). The engagement is started through the API's POST (the door reads the deal
from a CRM that answers with the test's opportunity) and waits for a finance approval.
Checked: the list found by a saved-view query shows the summary (customer — deal — value);
the engagement's page shows its details and current details (stage, whose approval, since
when). Screenshots are kept in the test's output directory and in .d2r/artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from google.protobuf.json_format import MessageToDict
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from contracts import search_attributes as sa
from contracts.story import start_summary
from domain.deal import OpportunitySnapshot
from domain.stages import Stage
from tests.conftest import TEST_CONVERTER, TEST_KEY_RING, wheel_binary
from tests.integration.conftest import TEST_DYNAMIC_CONFIG, eventually
from tests.workflows.fakes import FakeSystems, good_opportunity
from workers.deployment import deployment_config, promote
from workers.devstack import dynamic_config_flags
from workflows.engagement import EngagementWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("headless Chromium is not installed: run `apt-get install -y chromium` (make test does)")
    return found


class DealCrm:
    """The door's one CRM read, answered with the test's opportunity."""

    def __init__(self, deal: OpportunitySnapshot) -> None:
        self.deal = deal

    async def read_opportunity(self, opportunity_id: str) -> OpportunitySnapshot:
        return self.deal


@dataclass
class UiStack:
    ui: str
    api: str
    deal: OpportunitySnapshot
    client: Client


@pytest.fixture(scope="module")
async def ui_stack() -> AsyncIterator[UiStack]:
    ui_port, api_port = free_port(), free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=[
            "--ui-codec-endpoint",
            f"http://127.0.0.1:{api_port}/codec",
            "--ui-disable-news-fetch",
            *dynamic_config_flags(TEST_DYNAMIC_CONFIG),
        ],
    )
    big = good_opportunity(f"006UI{uuid.uuid4().hex[:13].upper()}").model_copy(update={"amount": Decimal("300000")})
    big.lines[0].total_price = Decimal("250000")  # over the USD threshold: finance must approve
    queue = f"ui-{uuid.uuid4().hex[:6]}"
    settings = ApiSettings(
        profile="dev",
        static_tokens=True,
        workflow_task_queue=queue,
        crm_task_queue=queue,
        psa_task_queue=queue,
        erp_task_queue=queue,
        codec_keys={k: base64.b64encode(v).decode() for k, v in TEST_KEY_RING.keys.items()},
        codec_current_key=TEST_KEY_RING.current,
        cors_origins=[f"http://127.0.0.1:{ui_port}"],
    )
    app = create_app(settings, temporal=env.client, crm=DealCrm(big))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    fake = FakeSystems(big)
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[EngagementWorkflow],
            activities=fake.activities(),
            deployment_config=deployment_config("it-ui", "v1"),
        ):
            assert await promote(env.client, "it-ui", "v1", "always", within=180)
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.05)
            yield UiStack(
                ui=f"http://127.0.0.1:{ui_port}", api=f"http://127.0.0.1:{api_port}", deal=big, client=env.client
            )
    finally:
        server.should_exit = True
        await serving
        await env.shutdown()


async def keep(page: Page, out: Path, name: str) -> None:
    save(await page.screenshot(full_page=True), out, f"{name}.png")


def save(shot: bytes, out: Path, name: str) -> None:
    """In the test's output directory, and a copy in .d2r/artifacts/ for people to look at."""
    artifacts = Path(".d2r/artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    for folder in (out, artifacts):
        (folder / name).write_bytes(shot)


async def text_showing(page: Page, *wanted: str) -> str | None:
    """The text of the page and its frames, once it shows everything `wanted`."""
    texts = []
    for frame in page.frames:
        try:
            texts.append(await frame.inner_text("body", timeout=2_000))
        except PlaywrightError:
            continue  # a frame that is gone or has no body yet
    text = "\n".join(texts)
    return text if all(w in text for w in wanted) else None


async def test_the_web_ui_tells_the_engagement_s_story(ui_stack: UiStack, tmp_path: Path) -> None:
    deal = ui_stack.deal
    wid = f"engagement-{deal.opportunity_id}"
    async with httpx.AsyncClient(base_url=ui_stack.api, timeout=30) as api:
        started = await api.post(
            "/v1/engagements",
            json={"opportunity_id": deal.opportunity_id},
            headers={"Authorization": "Bearer dev-sales-ops"},
        )
        assert started.status_code == 202, started.text

        async def awaiting() -> dict[str, object] | None:
            view = await api.get(started.headers["location"], headers={"Authorization": "Bearer dev-auditor"})
            body: dict[str, object] = view.json()
            return body if view.status_code == 200 and body["stage"] == Stage.AWAITING_APPROVAL.value else None

        await eventually(awaiting, within=60)

    summary = start_summary(deal.opportunity_id, deal)
    assert summary == "Acme Corp US — Acme ERP rollout — USD 300,000.00"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1500, "height": 1100})
            # The Web UI's data-encoder settings, as a person ticks them once: send the codec
            # session cookie along with the codec requests.
            await context.add_init_script(
                f"localStorage.setItem('endpoint', JSON.stringify('{ui_stack.api}/codec'));"
                "localStorage.setItem('overrideRemoteCodecConfiguration', 'true');"
                "localStorage.setItem('includeCredentials', 'true');"
                "localStorage.setItem('passAccessToken', 'false');"
            )
            session = await context.request.post(f"{ui_stack.api}/codec/session", data={"token": "dev-auditor"})
            assert session.status == 204, await session.text()
            page = await context.new_page()

            # A saved view: engagements waiting for a person's approval (docs/operations.md).
            query = quote(f"WorkflowType = 'EngagementWorkflow' AND D2RPendingApproval = true AND WorkflowId = '{wid}'")
            await page.goto(f"{ui_stack.ui}/namespaces/default/workflows?query={query}")
            await page.get_by_text(wid).first.wait_for(timeout=60_000)
            await keep(page, tmp_path, "web-ui-waiting-for-approval")

            await page.goto(f"{ui_stack.ui}/namespaces/default/workflows/{wid}")
            # The activities' summaries on the timeline, decoded: each step in business words.
            await (
                page.get_by_text(f"Read opportunity {deal.opportunity_id} with account and lines")
                .filter(visible=True)
                .first.wait_for(timeout=60_000)
            )
            await keep(page, tmp_path, "web-ui-timeline")
            await page.get_by_text("User Metadata").first.click()
            try:
                # The markdown is rendered in sandboxed frames: read every frame's text.
                text = await eventually(lambda: text_showing(page, summary, "Waiting for:"), within=60)
            finally:
                await keep(page, tmp_path, "web-ui-engagement")  # also what a failure looked like
        finally:
            await browser.close()
    # Decoded through the codec server: the summary, the CRM's deal and what it waits for.
    assert summary in text
    assert "Customer:" in text and "Acme Corp US" in text
    assert "AWAITING_APPROVAL" in text and "finance to decide deal" in text and "not dev-sales-ops" in text
    assert (tmp_path / "web-ui-engagement.png").stat().st_size > 10_000


async def test_summary_and_details_are_encrypted_and_the_codec_server_reads_them(ui_stack: UiStack) -> None:
    deal = ui_stack.deal
    handle = ui_stack.client.get_workflow_handle(f"engagement-{deal.opportunity_id}")
    metadata = (await handle.describe()).raw_description.execution_config.user_metadata
    stored = MessageToDict(metadata.summary)
    assert "Acme" not in str(stored) and b"Acme" not in metadata.summary.data  # ciphertext at rest
    async with httpx.AsyncClient(base_url=ui_stack.api) as api:
        refused = await api.post("/codec/decode", json={"payloads": [stored]})
        decoded = await api.post(
            "/codec/decode", json={"payloads": [stored]}, headers={"Authorization": "Bearer dev-auditor"}
        )
    assert refused.status_code == 401
    assert decoded.status_code == 200, decoded.text
    clear = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
    assert start_summary(deal.opportunity_id, deal) in json.loads(clear)
