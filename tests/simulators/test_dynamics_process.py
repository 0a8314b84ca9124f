"""The D365 simulator as a real process (uvicorn): a lost response is a dropped connection,
and what was committed survives kill -9."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simulators.dynamics import DynamicsSettings
from tests.simulators.procs import free_port, kill9, start, stop

TENANT = DynamicsSettings().tenant


def token(base: str) -> str:
    r = httpx.post(
        f"{base}/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "d2r-dev",
            "client_secret": "d2r-dev-secret",
            "scope": f"{base}/.default",
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_lost_response_drops_the_connection_and_data_survives_kill9(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "d365.sqlite"
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.dynamics", port, db, "--seed", "demo")
    try:
        headers = {"Authorization": f"Bearer {token(base)}"}
        body = {
            "CustomerAccount": "CUST-LOST",
            "OrganizationName": "Lost Ltd",
            "CustomerGroupId": "30",
            "SalesCurrencyCode": "GBP",
        }
        httpx.post(f"{base}/__admin/faults", json={"response_lost_rate": 1.0})
        with pytest.raises(httpx.TransportError):  # the server hangs up: the client can't know the outcome
            httpx.post(f"{base}/data/CustomersV3", json=body, headers=headers, timeout=10)
        httpx.delete(f"{base}/__admin/faults")
        kill9(proc)
        proc = start("simulators.dynamics", port, db, "--seed", "demo")
        # the write was committed before the connection dropped, and the token survived too
        got = httpx.get(f"{base}/data/CustomersV3(dataAreaId='uk01',CustomerAccount='CUST-LOST')", headers=headers)
        assert got.status_code == 200 and got.json()["OrganizationName"] == "Lost Ltd"
        assert httpx.get(f"{base}/__admin/duplicates").json()["count"] == 0
    finally:
        stop(proc)
