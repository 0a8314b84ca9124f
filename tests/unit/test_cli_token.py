"""`d2r token` mints what the API's verifier accepts: subject, roles, entities, lifetime."""

from __future__ import annotations

from pathlib import Path

import jwt
from typer.testing import CliRunner

from cli.main import app
from security import dev_issuer
from security.tokens import JwtVerifier, OidcSettings

ISSUER = "http://127.0.0.1:8000/dev-issuer"


def test_token_for_a_role_and_entities(tmp_path: Path) -> None:
    key = dev_issuer.ensure_key(tmp_path / "key.pem")
    args = ["token", "--role", "finance", "--entities", "US01,uk01", "--subject", "alice", "--key-file", str(key)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["aud"] == dev_issuer.DEV_AUDIENCE
    assert claims["exp"] - claims["iat"] == dev_issuer.DEFAULT_TTL_SECONDS
    verifier = JwtVerifier(OidcSettings(issuer=ISSUER, audience=dev_issuer.DEV_AUDIENCE), frozenset({"finance"}))
    public = jwt.PyJWK(dev_issuer.jwks(key)["keys"][0])
    identity = verifier.identity(
        jwt.decode(token, public.key, algorithms=["RS256"], audience=dev_issuer.DEV_AUDIENCE, issuer=ISSUER)
    )
    assert (identity.subject, identity.roles, identity.entities) == ("alice", {"finance"}, {"US01", "UK01"})


def test_unknown_role_and_missing_key_are_refused(tmp_path: Path) -> None:
    key = dev_issuer.ensure_key(tmp_path / "key.pem")
    bad_role = CliRunner().invoke(app, ["token", "--role", "root", "--key-file", str(key)])
    assert bad_role.exit_code != 0 and "unknown roles" in bad_role.output
    no_key = CliRunner().invoke(app, ["token", "--role", "auditor", "--key-file", str(tmp_path / "none.pem")])
    assert no_key.exit_code == 2 and "make run" in no_key.output
