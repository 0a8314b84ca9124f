"""`d2r exceptions list` as an operator runs it (its own process) against the reporting API
served over HTTP on the real hub (embedded PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import uvicorn

from reporting import models as m
from reporting.hub import ReportingHub
from tests.reporting.conftest import make_app

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def d2r(api: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "D2R_API_URL": api, "D2R_TOKEN": "dev-finance", "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_exceptions_list_shows_the_open_ones(hub: ReportingHub) -> None:
    exc_id = await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="engagement-CLI1:erp_customer",
            kind="provisioning",
            error_message="subsidiary missing for CLI1",
            workflow_id="engagement-CLI1",
            legal_entity="UK01",
        )
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(make_app(hub), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        api = f"http://127.0.0.1:{port}"
        code, out, err = await d2r(api, "exceptions", "list", "-e", "UK01", "--json")
        assert code == 0, err
        mine = [x for x in json.loads(out) if x["id"] == exc_id]
        assert [(x["kind"], x["status"], x["workflow_id"]) for x in mine] == [
            ("provisioning", "open", "engagement-CLI1")
        ]
        code, out, err = await d2r(api, "exceptions", "list", "--kind", "provisioning")
        assert code == 0, err
        assert "subsidiary missing for CLI1" in out and "exception(s)" in out  # the table
        code, _, err = await d2r(api, "exceptions", "list", "--status", "nope")
        assert code == 1 and "422" in err

        # This API has no Temporal client: retry is refused as such, nothing changes.
        code, _, err = await d2r(api, "exceptions", "retry", str(exc_id))
        assert code == 1 and "503" in err and "Retry unavailable" in err
        assert (await hub.get_exception(exc_id))["status"] == "open"
        code, out, err = await d2r(api, "exceptions", "resolve", str(exc_id), "-m", "subsidiary added in the ERP")
        assert code == 0, err
        assert f"exception {exc_id} (provisioning): resolved by dev-finance" in out
        done = await hub.get_exception(exc_id)
        assert (done["status"], done["resolution_note"]) == ("resolved", "subsidiary added in the ERP")
        code, _, err = await d2r(api, "exceptions", "retry", str(exc_id))
        assert code == 1 and "409 Already resolved" in err
    finally:
        server.should_exit = True
        await serving
