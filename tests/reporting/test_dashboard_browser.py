"""The dashboard in headless Chromium (Debian's `chromium` package): charts render data.

Marked `browser`. It fails, rather than skips, when Chromium is missing: install it with
`apt-get install -y chromium` (the test bootstrap does), or deselect with -m "not browser".
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

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


@pytest.fixture
async def served(hub: ReportingHub) -> AsyncIterator[str]:
    await dataset.load(hub)
    await hub.record_source_totals(clean_totals())
    await hub.reconcile("2026-01", "US1")
    await hub.reconcile("2026-03", "UK1")  # checks no project: "nothing to reconcile"
    from reporting import models as m

    await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="engagement-O9:validation",
            kind="validation",
            error_message="<b>close date missing</b>",
            workflow_id="engagement-O9",
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(hub), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


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


async def test_dashboard_without_token_says_so(served: str) -> None:
    dom = await run_chromium("--dump-dom", f"{served}/dashboard")
    assert 'data-state="error"' in dom
    assert "no token" in dom or "401" in dom
