"""A non-dev profile refuses dev material at start-up, with one message naming every
finding; a clean production configuration starts."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.app import create_app
from api.settings import ApiSettings
from security import dev_issuer
from security.production import DEV_WEBHOOK_SECRET, InsecureConfigurationError
from security.redact import RedactSecrets
from workers.settings import VendorEndpoint, WorkerSettings
from workers.temporal_client import connect

KEY = SecretStr(base64.b64encode(bytes(range(32))).decode())
REAL_CRM = VendorEndpoint(url="https://example.my.salesforce.com", client_secret=SecretStr("a-real-secret"))


def prod(**overrides: object) -> ApiSettings:
    settings: dict[str, object] = {
        "profile": "prod",
        "codec_keys": {"k1": KEY},
        "oidc_issuer": "https://login.example.com/tenant/v2.0",
        "oidc_audience": "api://d2r",
        "salesforce": REAL_CRM,
        "webhook_secrets": {"salesforce": "whsec_" + base64.b64encode(b"x" * 32).decode()},
        "cors_origins": ["https://temporal.example.com"],
    }
    settings.update(overrides)
    return ApiSettings(**settings)  # type: ignore[arg-type]


def test_a_clean_production_configuration_starts() -> None:
    app = create_app(prod(), temporal=object())  # type: ignore[arg-type]
    assert app.state.temporal_codec is not None
    assert not any(getattr(r, "path", "").startswith("/dev-issuer") for r in app.routes)


@pytest.mark.parametrize(
    ("overrides", "finding"),
    [
        ({"static_tokens": True}, "static tokens"),
        ({"codec_keys": {}}, "no payload codec key"),
        ({"oidc_issuer": None}, "no token issuer"),
        ({"oidc_audience": None}, "no token audience"),
        ({"webhook_secret": DEV_WEBHOOK_SECRET}, "dev secret"),
        ({"webhook_secrets": {"netsuite": DEV_WEBHOOK_SECRET}}, "dev secret"),
        ({"cors_origins": ["*"]}, "wildcard"),
        ({"salesforce": VendorEndpoint(url="http://127.0.0.1:8301")}, "dev client secret"),
    ],
)
def test_each_piece_of_dev_material_is_refused(overrides: dict[str, object], finding: str) -> None:
    with pytest.raises(InsecureConfigurationError, match=finding) as refused:
        create_app(prod(**overrides), temporal=object())  # type: ignore[arg-type]
    assert str(refused.value).startswith("profile 'prod' refuses to start:")


def test_the_dev_issuer_is_refused(tmp_path: Path) -> None:
    key = dev_issuer.ensure_key(tmp_path / "key.pem")
    with pytest.raises(InsecureConfigurationError, match="dev issuer"):
        create_app(prod(dev_issuer_key_file=key), temporal=object())  # type: ignore[arg-type]


def test_every_finding_is_listed_at_once() -> None:
    with pytest.raises(InsecureConfigurationError) as refused:
        create_app(ApiSettings(profile="prod"), temporal=object())  # type: ignore[arg-type]
    message = str(refused.value)
    for finding in ("no payload codec key", "no token issuer", "no token audience", "dev client secret"):
        assert finding in message


def test_the_dev_profile_keeps_its_conveniences() -> None:
    create_app(ApiSettings(profile="dev", static_tokens=True), temporal=object())  # type: ignore[arg-type]


async def test_a_production_worker_refuses_to_connect_without_a_codec_key() -> None:
    settings = WorkerSettings(profile="prod", salesforce=REAL_CRM, erp_instances={})
    with pytest.raises(InsecureConfigurationError, match="no payload codec key"):
        await connect(settings)
    dev_erp = WorkerSettings(profile="prod", salesforce=REAL_CRM, codec_keys={"k1": KEY})
    with pytest.raises(InsecureConfigurationError, match="default endpoint uses the simulators' dev client secret"):
        await connect(dev_erp)


def test_log_lines_never_carry_bearer_tokens_or_query_tokens(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("d2r.test.redact")
    logger.addFilter(RedactSecrets())
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
    with caplog.at_level(logging.INFO, logger="d2r.test.redact"):
        logger.info('127.0.0.1 - "GET /dashboard?token=%s HTTP/1.1" 200', jwt_like)
        logger.info("Authorization: Bearer %s", "dev-finance")
        logger.info("client_secret=%s&grant_type=client_credentials", "d2r-dev-secret")
    text = caplog.text
    assert jwt_like not in text and "dev-finance" not in text and "d2r-dev-secret" not in text
    assert text.count("[redacted]") == 3


# ---- limits at the door ------------------------------------------------------------------------
def limited_client(**overrides: object):  # type: ignore[no-untyped-def]
    import httpx

    settings = ApiSettings(profile="dev", static_tokens=True, salesforce=None, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, temporal=object())  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_each_principal_has_its_own_request_budget_answered_with_429() -> None:
    async with limited_client(rate_limit="3/minute") as http:
        finance = [await http.get("/v1/reports", headers={"Authorization": "Bearer dev-finance"}) for _ in range(4)]
        auditor = await http.get("/v1/reports", headers={"Authorization": "Bearer dev-auditor"})
    assert [r.status_code for r in finance] == [200, 200, 200, 429]
    refused = finance[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "dev-finance" in refused.json()["detail"]
    assert auditor.status_code == 200  # another principal, another budget


async def test_a_body_over_the_limit_is_413_declared_or_streamed() -> None:
    big = b'{"opportunity_id": "' + b"A" * 2000 + b'"}'
    headers = {"Authorization": "Bearer dev-sales-ops", "Content-Type": "application/json"}

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    async with limited_client(max_body_bytes=1024) as http:
        declared = await http.post("/v1/engagements", content=big, headers=headers)
        streamed = await http.post("/v1/engagements", content=chunks(), headers=headers)
        small = await http.post("/v1/engagements", json={"opportunity_id": "bad!"}, headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Request body too large"
    assert small.status_code == 422  # under the limit: judged as usual
