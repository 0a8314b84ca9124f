"""The dashboard in headless Chromium (Debian's `chromium` package): charts render data, the
operations panel links each problem, x-axis labels never overlap, and a reader without a
token is told how to sign in.

Marked `browser`. It fails, rather than skips, when Chromium is missing: install it with
`apt-get install -y chromium` (the test bootstrap does), or deselect with -m "not browser".
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from reporting import models as m
from reporting.hub import ReportingHub
from tests.reporting import dataset
from tests.reporting.conftest import make_app
from tests.reporting.test_reconciliation_exceptions_audit import clean_totals

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium is not installed: run `apt-get install -y chromium` "
        "(or deselect this test with -m 'not browser')"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(hub: ReportingHub) -> AsyncIterator[str]:
    await dataset.load(hub)
    await hub.record_source_totals(clean_totals())
    await hub.reconcile("2026-01", "US1")
    await hub.reconcile("2026-03", "UK1")  # checks no project: "nothing to reconcile"
    await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="engagement-O9:validation",
            kind="validation",
            error_message="<b>close date missing</b>",
            workflow_id="engagement-O9",
        )
    )
    async with serve(make_app(hub)) as url:
        yield url


# The test's own page, apart from the dashboard's code: it frames the dashboard (same origin),
# waits until it has drawn, then measures every x-axis label on screen and counts the pairs
# whose boxes intersect (x-axis labels are the centred texts; the y axis is right-aligned).
OVERLAP_CHECK = """<!doctype html><html><body>
<iframe id="d" src="/dashboard?token=dev-finance&amp;from=2025-01&amp;to=2026-12" width="1400" height="2400"></iframe>
<pre id="result">waiting</pre>
<script>
function check() {
  const doc = document.getElementById("d").contentDocument;
  const state = doc && doc.body && doc.body.dataset.state;
  if (!state || state === "loading") return setTimeout(check, 100);
  let labels = 0, overlaps = 0;
  for (const svg of doc.querySelectorAll("svg")) {
    const boxes = [...svg.querySelectorAll("text[text-anchor=middle]")].map(t => t.getBoundingClientRect());
    labels += boxes.length;
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
    }));
  }
  document.getElementById("result").textContent = JSON.stringify({state: doc.body.dataset.state, labels, overlaps});
}
check();
</script></body></html>"""


async def test_dashboard_x_axis_labels_never_overlap(hub: ReportingHub) -> None:
    """Two years of months in the trend and the utilization bars (24 bars of 16 px), and
    exception kinds longer than their bars: every label drawn stays clear of the others."""
    await dataset.load(hub)
    for kind in ("engagement.needs_attention", "master_data.conflict", "reconciliation.invoice_total"):
        await hub.record_exception(m.ExceptionRecord(dedupe_key=f"x:{kind}", kind=kind, error_message=kind))
    app = make_app(hub)
    app.add_api_route("/overlap-check", lambda: HTMLResponse(OVERLAP_CHECK), include_in_schema=False)
    async with serve(app) as url:
        dom = await run_chromium("--window-size=1400,2400", "--dump-dom", f"{url}/overlap-check")
    found = re.search(r'<pre id="result">(\{.*?\})</pre>', dom)
    assert found, dom[-2000:]
    result = json.loads(found.group(1))
    assert result["state"] == "ready" and result["labels"] >= 12, result
    assert result["overlaps"] == 0, result


async def test_dashboard_operations_panel_links_each_problem(hub: ReportingHub) -> None:
    """Each block counts its problems and links the engagement in the API and the Web UI:
    a provisioning that failed (O1), a master-data conflict, 50 approved PSA hours of P1 (O1)
    in February with none posted, an ERP invoice total for P3 (O3) in March the hub does not
    have; the oldest open exception is ten days old."""
    await dataset.load(hub)
    await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="engagement-O1:engagement.needs_attention:1",
            kind="engagement.needs_attention",
            error_message="provisioning failed and was undone: VendorValidationError: subsidiary missing",
            workflow_id="engagement-O1",
            workflow_link="http://ui.test/namespaces/default/workflows/engagement-O1",
            opportunity_id="O1",
            legal_entity="US1",
        )
    )
    conflict = await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="md:ACME:name",
            kind="master_data.conflict",
            error_message="customer ACME: the ERP's name differs from the CRM's",
            legal_entity="US1",
        )
    )
    await hub.pool.execute(
        "UPDATE hub_exception SET first_seen_at = now() - interval '10 days' WHERE id = $1", conflict
    )
    await hub.record_source_totals(
        [
            m.SourceTotals(source_system="psa", legal_entity="US1", project_id="P1", period="2026-02", hours=D("50")),
            m.SourceTotals(
                source_system="erp", legal_entity="US1", project_id="P3", period="2026-03", invoice_total=D("999")
            ),
        ]
    )
    await hub.reconcile("2026-03", "US1")
    async with serve(make_app(hub)) as url:
        dom = await run_chromium("--dump-dom", f"{url}/dashboard?token=dev-finance&from=2026-01&to=2026-03")
    assert 'data-state="ready"' in dom, dom[-3000:]

    def block(name: str) -> str:
        match = re.search(rf'<div id="ops-{name}" data-count="(\d*)">(.*?)</ul>', dom, re.S)
        assert match, name
        return match.group(0)

    provisioning = block("provisioning")
    assert 'data-count="1"' in provisioning and "subsidiary missing" in provisioning
    assert 'href="/v1/engagements/O1"' in provisioning
    assert 'href="http://ui.test/namespaces/default/workflows/engagement-O1"' in provisioning
    postings = block("postings")
    assert 'data-count="1"' in postings and "US1 2026-02 P1: 50 h approved, 0 h posted" in postings
    assert "/namespaces/default/workflows/engagement-O1" in postings
    invoices = block("invoices")
    assert 'data-count="1"' in invoices and "P3: ERP 999" in invoices and 'href="/v1/engagements/O3"' in invoices
    assert 'data-count="1"' in block("masterdata") and "the ERP&#39;s name differs" in block("masterdata").replace(
        "'", "&#39;"
    )
    stuck = block("stuck")  # this API has no Temporal client: not known, not zero
    assert 'data-count=""' in stuck and "needs the Temporal connection" in stuck and "—" in stuck
    assert re.search(r'data-age="over 7 days" data-count="1"', dom)


def keep_screenshot(shot: Path) -> bytes:
    """Read the screenshot and keep a copy in .d2r/artifacts/ for people to look at."""
    data = shot.read_bytes()
    artifacts = Path(".d2r/artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "dashboard.png").write_bytes(data)
    return data


async def run_chromium(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        chromium(), *CHROMIUM_FLAGS, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


async def test_dashboard_renders_charts_with_data(served: str, tmp_path: Path) -> None:
    url = f"{served}/dashboard?token=dev-finance&from=2026-01&to=2026-03"
    dom = await run_chromium("--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[-3000:]

    def section(name: str) -> str:
        match = re.search(rf'<section[^>]*id="{name}"[^>]*>.*?</section>', dom, re.S)
        assert match, name
        return match.group(0)

    trend = section("trend")
    # 4 series x 3 months of points, carrying the hand-computed values
    assert 'data-points="12"' in trend
    assert re.search(r'data-series="Bookings" data-label="2026-01" data-value="20000"', trend)
    assert re.search(
        r'data-series="Backlog \(month end\)" data-label="2026-02" '
        r'data-value="18540"',
        trend,
    )
    util = section("utilization")
    assert re.search(r'class="bar" data-label="26-01" data-value="0.0568"', util)
    aging = section("aging")
    assert 'class="bar"' in aging and "Open receivables" in aging
    exceptions = section("exceptions")
    assert 'id="open-exceptions">1<' in exceptions
    assert "&lt;b&gt;close date missing&lt;/b&gt;" in exceptions  # escaped, not injected
    recon = section("recon")
    assert 'data-status="clean"' in recon and 'data-status="nothing_to_reconcile"' in recon
    assert '<span class="pill none">nothing to reconcile</span>' in recon
    assert "data-all-clean" not in recon  # a run that checked nothing is not clean

    shot = tmp_path / "dashboard.png"
    await run_chromium(f"--screenshot={shot}", "--window-size=1400,1500", url)
    data = keep_screenshot(shot)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000


async def test_dashboard_functional_currency_for_one_legal_entity(served: str) -> None:
    dom = await run_chromium(
        "--dump-dom",
        f"{served}/dashboard?token=dev-finance&from=2026-01&to=2026-02&legal_entity=UK1&currency=functional",
    )
    assert 'data-state="ready"' in dom
    assert "(GBP)" in dom and "UK1 · functional currency" in dom
    assert re.search(r'data-series="Bookings" data-label="2026-01" data-value="8000"', dom)
    # without a legal entity, functional amounts would mix currencies: reporting is used
    dom = await run_chromium(
        "--dump-dom", f"{served}/dashboard?token=dev-finance&from=2026-01&to=2026-02&currency=functional"
    )
    assert "all legal entities · reporting currency" in dom


async def test_dashboard_without_token_says_how_to_sign_in(served: str) -> None:
    dom = await run_chromium("--dump-dom", f"{served}/dashboard")
    assert 'data-state="signin"' in dom
    hint = re.search(r'<div id="signin">(.*?)</div>', dom, re.S)  # shown: no `hidden`
    assert hint and ".venv/bin/d2r token --role finance" in hint.group(1) and 'id="signin-token"' in hint.group(1)
    main = re.search(r"<main>.*</main>", dom, re.S)
    assert main and "sign in to see this" in main.group(0) and "401" not in main.group(0)  # no bare 401 panels
    # a token the API refuses says so too
    dom = await run_chromium("--dump-dom", f"{served}/dashboard?token=not-a-token")
    assert 'data-state="signin"' in dom and "your token was refused" in dom
