"""Bearer-token authentication and role checks for every /v1 endpoint."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from api.problems import ProblemError
from api.settings import DEV_TOKENS, ROLES, ApiSettings


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]


class InsecureConfigurationError(RuntimeError):
    pass


class TokenTable:
    """Resolves bearer tokens in constant time per entry; keeps only digests in memory."""

    def __init__(self, grants: dict[str, Principal]) -> None:
        self._by_digest = {self._digest_key(key): p for key, p in grants.items()}

    @staticmethod
    def _digest_key(key: str) -> str:
        if key.startswith("sha256:"):
            return key.removeprefix("sha256:").lower()
        return hashlib.sha256(key.encode()).hexdigest()

    def resolve(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> TokenTable:
        grants: dict[str, Principal] = {}
        dev_digests = {hashlib.sha256(t.encode()).hexdigest() for t in DEV_TOKENS}
        configured_dev = [k for k in settings.api_tokens if cls._digest_key(k) in dev_digests]
        if settings.profile != "dev":
            if configured_dev:
                raise InsecureConfigurationError(
                    f"profile {settings.profile!r} refuses to start: dev tokens are configured"
                )
        else:
            grants.update({t: Principal(s, r) for t, (s, r) in DEV_TOKENS.items()})
        for key, grant in settings.api_tokens.items():
            unknown = set(grant.roles) - ROLES
            if unknown:
                raise InsecureConfigurationError(f"unknown roles {sorted(unknown)} for {grant.subject}")
            grants[key] = Principal(grant.subject, frozenset(grant.roles))
        return cls(grants)


SESSION_COOKIE = "d2r_codec_session"  # the codec server's cookie (api/codec.py)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="d2r"'}


async def principal_from_token(request: Request, token: str) -> Principal:
    """The principal a token stands for; 401 when it stands for no one."""
    table: TokenTable = request.app.state.tokens
    principal = table.resolve(token.strip())
    if principal is None:
        raise ProblemError(401, "Unauthorized", "the bearer token is not valid", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller of this request, from `Authorization: Bearer <token>`; 401 otherwise."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "Unauthorized", "a bearer token is required", headers=_CHALLENGE)
    return await principal_from_token(request, token)


def require_roles(*roles: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency: 401 without a valid bearer token, 403 without one of `roles`."""
    wanted = frozenset(roles)
    assert wanted <= ROLES, f"unknown roles {wanted - ROLES}"

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if wanted and not (principal.roles & wanted):
            raise ProblemError(403, "Forbidden", f"this action needs one of the roles {sorted(wanted)}")
        return principal

    return dependency


ANY_ROLE = tuple(sorted(ROLES))
