"""OIDC/JWT bearer auth against a real (local, offline) issuer: discovery, JWKS with
rotation, iss/aud/exp/nbf with leeway, roles and entities from configurable claims."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from security import dev_issuer
from security.tokens import JwtVerifier, OidcSettings, TokenRejected

AUDIENCE = "d2r-api"


@dataclass
class Issuer:
    url: str
    keys: list[Path] = field(default_factory=list)
    jwks_fetches: int = 0

    def token(self, key: Path | None = None, **kw) -> str:  # type: ignore[no-untyped-def]
        args = {"subject": "alice", "roles": ["finance"], "entities": ["UK01"], **kw}
        return dev_issuer.mint(key or self.keys[0], self.url, **args)


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    state = Issuer(url="", keys=[dev_issuer.ensure_key(tmp_path / "k1.pem")])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = dev_issuer.discovery(state.url)
            elif self.path == "/jwks.json":
                state.jwks_fetches += 1
                body = dev_issuer.jwks(*state.keys)
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def verifier(issuer: Issuer, **kw) -> JwtVerifier:  # type: ignore[no-untyped-def]
    settings = OidcSettings(issuer=issuer.url, audience=AUDIENCE, jwks_refetch_cooldown_seconds=0, **kw)
    return JwtVerifier(settings, frozenset({"finance", "auditor", "sales_ops", "delivery_ops", "integration_admin"}))


def test_a_dev_issuer_token_names_subject_roles_and_entities(issuer: Issuer) -> None:
    identity = verifier(issuer).verify(issuer.token(entities=["UK01", "us01"]))
    assert identity.subject == "alice"
    assert identity.roles == {"finance"}
    assert identity.entities == {"UK01", "US01"}
    everything = verifier(issuer).verify(issuer.token(entities=["*"]))
    assert everything.entities is None


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (lambda: {"audience": "someone-else"}, "audience"),
        (lambda: {"ttl_seconds": -120}, "expired"),
        # built when the test runs, not at collection: a long suite would otherwise reach the nbf
        (lambda: {"extra": {"nbf": int(time.time()) + 600}}, "not yet valid"),
        (lambda: {"extra": {"iss": "http://evil.example"}}, "issuer"),
    ],
)
def test_wrong_audience_issuer_or_time_is_rejected(
    issuer: Issuer, claims: Callable[[], dict[str, object]], reason: str
) -> None:
    with pytest.raises(TokenRejected, match=f"(?i){reason}"):
        verifier(issuer).verify(issuer.token(**claims()))  # type: ignore[arg-type]


def test_small_clock_skew_is_tolerated(issuer: Issuer) -> None:
    assert verifier(issuer).verify(issuer.token(ttl_seconds=-10)).subject == "alice"  # within the 30 s leeway


def test_a_token_signed_by_an_unknown_key_is_rejected(issuer: Issuer, tmp_path: Path) -> None:
    stranger = dev_issuer.ensure_key(tmp_path / "stranger.pem")
    with pytest.raises(TokenRejected, match="signing key"):
        verifier(issuer).verify(issuer.token(key=stranger))


def test_a_forged_signature_is_rejected(issuer: Issuer) -> None:
    head, body, _sig = issuer.token().split(".")
    other = issuer.token(subject="mallory").split(".")[2]
    with pytest.raises(TokenRejected, match="not valid"):
        verifier(issuer).verify(f"{head}.{body}.{other}")


def test_the_jwks_is_cached_and_refetched_when_the_issuer_rotates(issuer: Issuer, tmp_path: Path) -> None:
    v = verifier(issuer)
    v.verify(issuer.token())
    v.verify(issuer.token())
    assert issuer.jwks_fetches == 1  # cached
    rotated = dev_issuer.ensure_key(tmp_path / "k2.pem")
    issuer.keys.append(rotated)
    assert v.verify(issuer.token(key=rotated, subject="bob")).subject == "bob"  # unknown kid: one refetch
    assert issuer.jwks_fetches == 2


def test_roles_and_entities_from_configured_claims_with_a_role_map(issuer: Issuer) -> None:
    v = verifier(
        issuer,
        roles_claim="realm_access.roles",
        entities_claim="org.entities",
        role_map={"d2r-finance": "finance", "d2r-audit": "auditor"},
    )
    token = issuer.token(
        roles=[],
        entities=[],
        extra={"realm_access": {"roles": ["d2r-finance", "offline_access", "root"]}, "org": {"entities": "DE01,JP01"}},
    )
    identity = v.verify(token)
    assert identity.roles == {"finance"}  # unknown names ignored, never granted
    assert identity.entities == {"DE01", "JP01"}


def test_missing_entities_claim_means_no_entity(issuer: Issuer) -> None:
    assert verifier(issuer).verify(issuer.token(entities=[])).entities == frozenset()


async def test_the_api_accepts_issuer_tokens_and_refuses_static_ones_by_default(issuer: Issuer) -> None:
    settings = ApiSettings(profile="dev", oidc_issuer=issuer.url, oidc_audience=AUDIENCE, salesforce=None)
    app = create_app(settings, temporal=object())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        ok = await http.get("/v1/reports", headers={"Authorization": f"Bearer {issuer.token()}"})
        expired = await http.get("/v1/reports", headers={"Authorization": f"Bearer {issuer.token(ttl_seconds=-3600)}"})
        static = await http.get("/v1/reports", headers={"Authorization": "Bearer dev-finance"})
        no_role = await http.get("/v1/reports", headers={"Authorization": f"Bearer {issuer.token(roles=['root'])}"})
    assert ok.status_code == 200, ok.text
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert expired.headers["content-type"] == "application/problem+json"
    assert static.status_code == 401
    assert no_role.status_code == 403


async def test_the_api_serves_the_dev_issuer_it_trusts(tmp_path: Path) -> None:
    key = dev_issuer.ensure_key(tmp_path / "dev.pem")
    url = "http://127.0.0.1:8000/dev-issuer"
    settings = ApiSettings(profile="dev", oidc_issuer=url, oidc_audience=AUDIENCE, dev_issuer_key_file=key)
    app = create_app(settings, temporal=object())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        discovery = (await http.get("/dev-issuer/.well-known/openid-configuration")).json()
        jwks = (await http.get("/dev-issuer/jwks.json")).json()
    assert discovery["issuer"] == url and discovery["jwks_uri"] == url + "/jwks.json"
    assert [k["kid"] for k in jwks["keys"]] == [dev_issuer.key_id(key)]
    assert "d" not in jwks["keys"][0]  # the public half only
    prod = create_app(ApiSettings(profile="dev", dev_issuer_key_file=key), temporal=object())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=prod), base_url="http://test") as http:
        assert (await http.get("/dev-issuer/jwks.json")).status_code == 404  # no issuer configured: not served
