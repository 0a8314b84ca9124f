"""Vendor-native logins, verified by the simulators against the registered certificate:
NetSuite's OAuth 2.0 client credentials with a JWT client assertion ("The Request Token
Structure", "POST Request to the Token Endpoint"), Salesforce's client credentials (body
or HTTP Basic) and the JWT bearer flow; and the connectors' side of each."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import AuthenticationError
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.simulators.conftest import SF_V
from tests.vendor_auth import NS_TOKEN_PATH, netsuite_assertion, netsuite_token_form, private_key_pem

NS = "http://ns.test"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


async def ns_token(ns: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await ns.post(NS_TOKEN_PATH, data=form, headers={"authorization": ""})


async def test_netsuite_signed_assertion_gets_a_token_that_works(ns: httpx.AsyncClient) -> None:
    r = await ns_token(ns, netsuite_token_form(NS))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and int(body["expires_in"]) > 0
    ok = await ns.get(
        "/services/rest/record/v1/subsidiary/1", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert ok.status_code == 200
    # ES256 is on the documented list too, but this integration's certificate is RSA
    assert (await ns_token(ns, netsuite_token_form(NS, alg="PS512"))).status_code == 200


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}, None),
        (lambda: {"client_assertion": netsuite_assertion(NS + NS_TOKEN_PATH, key=other_key())}, "InvalidSignature"),
        (lambda: {"client_assertion": netsuite_assertion(NS + NS_TOKEN_PATH, alg="RS256")}, "UnsupportedAlgorithm"),
        (
            lambda: {
                "client_assertion": netsuite_assertion(
                    NS + NS_TOKEN_PATH, iat=int(time.time()) - 900, exp=int(time.time()) - 600
                )
            },
            "ExpiredAssertion",
        ),
        (lambda: {"client_assertion": netsuite_assertion(NS + NS_TOKEN_PATH, lifetime=7200)}, "60 minutes"),
        (lambda: {"client_assertion": netsuite_assertion("https://other.example/token")}, "InvalidAudience"),
        (
            lambda: {"client_assertion": netsuite_assertion(NS + NS_TOKEN_PATH, iss="someone-else")},
            "InvalidIntegration",
        ),
        (lambda: {"client_assertion": netsuite_assertion(NS + NS_TOKEN_PATH, scope="restlets")}, "InvalidScope"),
        (lambda: {"client_assertion": "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"}, "UnknownCertificate"),
    ],
    ids=["client-secret", "bad-signature", "rs256", "expired", "too-long", "audience", "issuer", "scope", "garbage"],
)
async def test_netsuite_refuses_what_netsuite_refuses(
    ns: httpx.AsyncClient, make: Callable[[], dict[str, str]], reason: str | None
) -> None:
    form = make()  # signed when the test runs: an assertion made at collection could expire first
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION, **form}
    if "client_secret" in form:
        data.pop("client_assertion_type")
    r = await ns_token(ns, data)
    assert r.status_code == 400
    assert r.json()["error"] in ("invalid_request", "invalid_client")
    if reason:
        assert reason in r.json()["error_description"]


async def test_netsuite_refuses_a_replayed_assertion(ns: httpx.AsyncClient) -> None:
    form = netsuite_token_form(NS)
    assert (await ns_token(ns, form)).status_code == 200
    again = await ns_token(ns, form)
    assert again.status_code == 400 and "ReplayedAssertion" in again.json()["error_description"]


async def test_salesforce_client_credentials_in_body_or_basic_header(sf: httpx.AsyncClient) -> None:
    body = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}
    assert (await sf.post("/services/oauth2/token", data=body)).status_code == 200
    basic = "Basic " + base64.b64encode(b"d2r-dev:d2r-dev-secret").decode()
    r = await sf.post(
        "/services/oauth2/token", data={"grant_type": "client_credentials"}, headers={"authorization": basic}
    )
    assert r.status_code == 200, r.text
    wrong = "Basic " + base64.b64encode(b"d2r-dev:nope").decode()
    r = await sf.post(
        "/services/oauth2/token", data={"grant_type": "client_credentials"}, headers={"authorization": wrong}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def sf_assertion(key: str | None = None, **overrides: object) -> str:
    claims: dict[str, object] = {
        "iss": "d2r-dev",
        "sub": "integration@d2r.dev",
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode(claims, key or private_key_pem(), algorithm="RS256")


@pytest.mark.parametrize(
    ("assertion", "error", "description"),
    [
        (lambda: sf_assertion(key=other_key()), "invalid_grant", "invalid assertion"),
        (lambda: sf_assertion(sub="someone@else"), "invalid_grant", "user hasn't approved this consumer"),
        (lambda: sf_assertion(exp=int(time.time()) - 60), "invalid_grant", "expired assertion"),
        (lambda: sf_assertion(aud="https://evil.example"), "invalid_grant", "audience is invalid"),
        (lambda: sf_assertion(iss="unknown-app"), "invalid_client_id", "client identifier invalid"),
    ],
    ids=["bad-signature", "unapproved-user", "expired", "audience", "client"],
)
async def test_salesforce_jwt_bearer_refusals(
    sf: httpx.AsyncClient, assertion: object, error: str, description: str
) -> None:
    r = await sf.post("/services/oauth2/token", data={"grant_type": JWT_BEARER, "assertion": assertion()})  # type: ignore[operator]
    assert r.status_code == 400
    assert r.json() == {"error": error, "error_description": description}


async def test_salesforce_connector_logs_in_with_the_jwt_bearer_flow(sf: httpx.AsyncClient) -> None:
    app = sf.app  # type: ignore[attr-defined]
    config = SalesforceConfig(
        base_url="http://sf.test", client_id="d2r-dev", username="integration@d2r.dev", private_key=private_key_pem()
    )
    client = SalesforceClient(config, transport=httpx.ASGITransport(app=app))
    try:
        account = await client.get("Account", "001Dd0000000001IAA")
        assert account["Name"]
        assert client.auth.token is not None and client.auth.token.instance_url
        # each token request signs a fresh assertion, so a second login is not a replay
        client.auth.token = None
        assert (await client.get("Account", "001Dd0000000001IAA"))["Id"] == account["Id"]
    finally:
        await client.aclose()
    refused = SalesforceClient(
        SalesforceConfig(
            base_url="http://sf.test", client_id="d2r-dev", username="nobody@d2r.dev", private_key=private_key_pem()
        ),
        transport=httpx.ASGITransport(app=app),
    )
    with pytest.raises(AuthenticationError):
        await refused.get("Account", "001Dd0000000001IAA")
    await refused.aclose()
    assert SF_V
