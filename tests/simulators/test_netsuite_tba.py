"""Token-based authentication (OAuth 1.0a, HMAC-SHA256, realm = the account id) against
the NetSuite simulator: d2r's connector with the TBA option, and requests signed by
oauthlib the way NetSuite's help describes ("The Authorization Headers"), bad ones
refused with NetSuite's 401 INVALID_LOGIN body and the reason in the login audit trail."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig, TokenBasedAuthConfig
from simulators._settings import SimSettings

BASE = "http://ns.test"
S = SimSettings()  # the simulator's dev credentials


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Any]:
    from simulators.netsuite import create_app

    sim = create_app(SimSettings(db=str(tmp_path / "ns.sqlite"), seed="demo", port=8302))
    yield sim
    sim.store.close()


def signed(url: str, method: str = "GET", **kw: Any) -> dict[str, str]:
    """The Authorization header oauthlib computes; kw overrides a credential or parameter."""
    client = OAuth1Client(
        kw.pop("consumer_key", S.netsuite_consumer_key),
        client_secret=kw.pop("consumer_secret", S.netsuite_consumer_secret),
        resource_owner_key=kw.pop("token_id", S.netsuite_token_id),
        resource_owner_secret=kw.pop("token_secret", S.netsuite_token_secret),
        signature_method=kw.pop("signature_method", SIGNATURE_HMAC_SHA256),
        realm=kw.pop("realm", S.netsuite_account_id),
        **kw,
    )
    _uri, headers, _body = client.sign(url, method)
    return {"Authorization": headers["Authorization"]}


def refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    (detail,) = r.json()["o:errorDetails"]
    assert detail["o:errorCode"] == "INVALID_LOGIN" and "Login Audit Trail" in detail["detail"]


async def test_the_connector_signs_every_call(app: Any) -> None:
    tba = TokenBasedAuthConfig(
        account_id="1234567-sb1",  # as the URL spells it; the realm is 1234567_SB1
        consumer_key=S.netsuite_consumer_key,
        consumer_secret=S.netsuite_consumer_secret,
        token_id=S.netsuite_token_id,
        token_secret=S.netsuite_token_secret,
    )
    config = NetSuiteConfig(base_url=BASE, client_id="", certificate_id="", private_key="", tba=tba)
    ns = NetSuiteClient(config, transport=httpx.ASGITransport(app=app))
    assert await ns.subsidiary_id("US01") == "1"  # SuiteQL: POST with ?limit=&offset= signed
    customer = await ns.upsert(
        "customer",
        "tba/cust:1",  # an external id that needs quoting in the signed path
        {"companyName": "Signed Co", "subsidiary": {"externalId": "US01"}, "isPerson": False},
    )
    assert (await ns.get("customer", customer))["companyName"] == "Signed Co"
    assert app.login_audit == []
    await ns.aclose()


async def test_bad_signature_stale_timestamp_replayed_nonce_are_refused(app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        url = f"{BASE}/services/rest/record/v1/subsidiary/1"
        assert (await http.get(url, headers=signed(url))).status_code == 200
        cases = {
            "InvalidSignature": signed(url, token_secret="not-the-secret"),
            "InvalidTimestamp": signed(url, timestamp=str(int(time.time()) - 3600)),
            "InvalidAccount": signed(url, realm="7654321"),
            "InvalidSignatureMethod": signed(url, signature_method=SIGNATURE_HMAC_SHA1),
            "InvalidToken": signed(url, token_id="t" * 64),
        }
        for reason, headers in cases.items():
            refused(await http.get(url, headers=headers))
            assert app.login_audit[-1] == reason
        # the same nonce twice: the second is a replay
        once = signed(url, nonce="d2rnonce0001", timestamp=str(int(time.time())))
        assert (await http.get(url, headers=once)).status_code == 200
        refused(await http.get(url, headers=once))
        assert app.login_audit[-1] == "InvalidNonce"
        # a signature covers the query string: another offset is another request
        page = f"{BASE}/services/rest/record/v1/accountingPeriod?limit=5&offset=0"
        header = signed(page)
        refused(await http.get(page.replace("offset=0", "offset=5"), headers=header))
        assert app.login_audit[-1] == "InvalidSignature"
