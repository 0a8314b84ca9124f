"""Bearer auth and roles on the API, without Temporal: 401/403 as problem+json."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from api.app import create_app
from api.auth import InsecureConfigurationError, TokenTable
from api.settings import ApiSettings, TokenGrant


def client(settings: ApiSettings | None = None) -> httpx.AsyncClient:
    app = create_app(settings or ApiSettings(profile="dev", static_tokens=True), temporal=object())  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_missing_token_is_401_problem_json() -> None:
    async with client() as http:
        response = await http.post("/v1/engagements", json={"opportunity_id": "006000000000001AAA"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["title"] == "Unauthorized"


async def test_wrong_token_is_401() -> None:
    async with client() as http:
        response = await http.get("/v1/engagements/006000000000001AAA", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "the bearer token is not valid"


async def test_wrong_role_is_403() -> None:
    async with client() as http:
        response = await http.post(
            "/v1/engagements",
            json={"opportunity_id": "006000000000001AAA"},
            headers={"Authorization": "Bearer dev-auditor"},
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "sales_ops" in response.json()["detail"]


async def test_invalid_body_is_422_problem_with_fields() -> None:
    async with client() as http:
        response = await http.post(
            "/v1/engagements", json={"opportunity_id": "not an id!"}, headers={"Authorization": "Bearer dev-sales-ops"}
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.opportunity_id"


def test_non_dev_profile_refuses_dev_tokens() -> None:
    settings = ApiSettings(profile="prod", api_tokens={"dev-finance": TokenGrant(subject="oops", roles=["finance"])})
    with pytest.raises(InsecureConfigurationError):
        create_app(settings, temporal=object())  # type: ignore[arg-type]


def test_non_dev_profile_refuses_hashed_dev_tokens_too() -> None:
    digest = "sha256:" + hashlib.sha256(b"dev-sales-ops").hexdigest()
    with pytest.raises(InsecureConfigurationError):
        TokenTable.from_settings(
            ApiSettings(profile="prod", api_tokens={digest: TokenGrant(subject="x", roles=["sales_ops"])})
        )


def test_static_tokens_resolve_by_digest_when_the_dev_option_is_on() -> None:
    secret = "s3cret-token-value"
    grants = {"sha256:" + hashlib.sha256(secret.encode()).hexdigest(): TokenGrant(subject="erp-bot", roles=["finance"])}
    table = TokenTable.from_settings(ApiSettings(static_tokens=True, api_tokens=grants))
    principal = table.resolve(secret)
    assert principal is not None and principal.subject == "erp-bot" and principal.roles == {"finance"}
    off = TokenTable.from_settings(ApiSettings(api_tokens=grants))
    assert off.resolve(secret) is None and off.resolve("dev-finance") is None


def test_static_tokens_are_refused_outside_dev() -> None:
    with pytest.raises(InsecureConfigurationError, match="dev option"):
        TokenTable.from_settings(ApiSettings(profile="prod", static_tokens=True))


def test_unknown_role_is_refused() -> None:
    with pytest.raises(InsecureConfigurationError):
        TokenTable.from_settings(
            ApiSettings(static_tokens=True, api_tokens={"t": TokenGrant(subject="x", roles=["root"])})
        )
