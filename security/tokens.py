"""OIDC/JWT bearer tokens: signature checked against the issuer's JWKS (cached, refetched
when an unknown key id appears, so the IdP can rotate), `iss`, `aud`, `exp`/`nbf` with a
small leeway; roles and legal-entity scopes read from configurable claims.

Works with any OIDC provider by settings alone (README, Security and privacy): the JWKS
address comes from the issuer's discovery document unless given.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel, Field

ALL_ENTITIES = "*"


class OidcSettings(BaseModel):
    issuer: str
    audience: str
    jwks_url: str | None = None  # default: the discovery document's jwks_uri
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    subject_claim: str = "sub"
    roles_claim: str = "roles"  # dotted path, e.g. Keycloak's "realm_access.roles"
    entities_claim: str = "d2r_entities"  # list or comma-separated; "*" = every entity
    # IdP role or group name -> d2r role; d2r role names are accepted as they are.
    role_map: dict[str, str] = Field(default_factory=dict)
    jwks_cache_seconds: int = Field(default=300, ge=1)
    jwks_refetch_cooldown_seconds: float = Field(default=30, ge=0)


@dataclass(frozen=True)
class Identity:
    subject: str
    roles: frozenset[str]
    entities: frozenset[str] | None  # None = every legal entity


class TokenRejected(ValueError):
    """Why a bearer token is not accepted (said to the caller as a 401 detail)."""


def claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


class JwtVerifier:
    """Blocking (the JWKS fetch is urllib): call it from a worker thread."""

    def __init__(self, settings: OidcSettings, known_roles: frozenset[str]) -> None:
        self.settings = settings
        self._known_roles = known_roles
        self._jwks: jwt.PyJWKClient | None = None

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            url = self.settings.jwks_url or self._discover_jwks_url()
            self._jwks = jwt.PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=self.settings.jwks_cache_seconds,
                cooldown_duration=self.settings.jwks_refetch_cooldown_seconds,
                timeout=10,
            )
        return self._jwks

    def _discover_jwks_url(self) -> str:
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                document = json.load(response)
        except OSError as error:
            raise TokenRejected(f"the issuer's discovery document is unreachable ({url})") from error
        if document.get("issuer") != self.settings.issuer:
            raise TokenRejected("the discovery document names another issuer")
        return str(document["jwks_uri"])

    def verify(self, token: str) -> Identity:
        try:
            key = self._client().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", self.settings.subject_claim]},
            )
        except jwt.PyJWKClientError as error:
            raise TokenRejected(f"no signing key for this token: {error}") from error
        except jwt.InvalidTokenError as error:
            raise TokenRejected(f"the bearer token is not valid: {error}") from error
        return self.identity(claims)

    def identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        roles = set()
        for name in _names(claim(claims, s.roles_claim)):
            role = s.role_map.get(name, name)
            if role in self._known_roles:
                roles.add(role)
        entities = _names(claim(claims, s.entities_claim))
        return Identity(
            subject=str(claims[s.subject_claim]),
            roles=frozenset(roles),
            entities=None if ALL_ENTITIES in entities else frozenset(e.upper() for e in entities),
        )
