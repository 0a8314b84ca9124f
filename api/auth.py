"""Who is calling: OIDC/JWT bearer tokens (security/tokens.py), or, as an explicit dev
option, static tokens; then role checks. Every /v1 route depends on this module."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.problems import ProblemError
from api.settings import DEV_TOKENS, ROLES, ApiSettings
from security.limits import PrincipalRateLimiter
from security.production import InsecureConfigurationError
from security.tokens import JwtVerifier, TokenRejected

__all__ = ["InsecureConfigurationError", "Principal", "authenticate", "require_roles"]


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    entities: frozenset[str] | None = None  # legal entities in scope; None = every entity

    def sees(self, legal_entity: str | None) -> bool:
        """Reads: the auditor and all-entity principals see everything; others their entities."""
        return self.entities is None or "auditor" in self.roles or legal_entity in self.entities

    def acts_on(self, legal_entity: str | None) -> bool:
        """Changes: only inside the principal's own scope, whatever it may read."""
        return self.entities is None or legal_entity in self.entities


class TokenTable:
    """Resolves static bearer tokens in constant time per entry; keeps only digests in memory."""

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
        """The static tokens (dev tokens and `api_tokens`) when the dev option is on; none otherwise."""
        grants: dict[str, Principal] = {}
        dev_digests = {hashlib.sha256(t.encode()).hexdigest() for t in DEV_TOKENS}
        configured_dev = [k for k in settings.api_tokens if cls._digest_key(k) in dev_digests]
        if settings.profile != "dev":
            if configured_dev:
                raise InsecureConfigurationError(
                    f"profile {settings.profile!r} refuses to start: dev tokens are configured"
                )
            if settings.static_tokens:
                raise InsecureConfigurationError(
                    f"profile {settings.profile!r} refuses to start: static tokens (D2R_STATIC_TOKENS) are a dev option"
                )
        if not settings.static_tokens:
            return cls({})
        grants.update({t: Principal(s, r) for t, (s, r) in DEV_TOKENS.items()})
        for key, grant in settings.api_tokens.items():
            unknown = set(grant.roles) - ROLES
            if unknown:
                raise InsecureConfigurationError(f"unknown roles {sorted(unknown)} for {grant.subject}")
            entities = frozenset(grant.entities) if grant.entities is not None else None
            grants[key] = Principal(grant.subject, frozenset(grant.roles), entities)
        return cls(grants)


class Authenticator:
    """JWTs go to the issuer's keys; anything else to the static table (empty unless the dev option is on)."""

    def __init__(self, verifier: JwtVerifier | None, static: TokenTable) -> None:
        self.verifier = verifier
        self.static = static

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Authenticator:
        oidc = settings.oidc()
        verifier = JwtVerifier(oidc, ROLES) if oidc else None
        return cls(verifier, TokenTable.from_settings(settings))

    async def principal(self, token: str) -> Principal:
        if token.count(".") == 2 and self.verifier is not None:
            try:
                identity = await run_in_threadpool(self.verifier.verify, token)
            except TokenRejected as error:
                raise _unauthorized(str(error)) from error
            return Principal(identity.subject, identity.roles, identity.entities)
        found = self.static.resolve(token)
        if found is None:
            raise _unauthorized("the bearer token is not valid")
        return found


SESSION_COOKIE = "d2r_codec_session"  # the codec server's cookie (api/codec.py)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="d2r"'}


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, headers=_CHALLENGE)


async def principal_from_token(request: Request, token: str) -> Principal:
    """The principal a token stands for; 401 when it stands for no one."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.principal(token.strip())
    limiter: PrincipalRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and (wait := limiter.hit(principal.subject)) is not None:
        raise ProblemError(
            429,
            "Too many requests",
            f"{principal.subject} is over {limiter.item}; try again in {wait:.0f} s",
            type_="urn:d2r:problem:rate-limited",
            headers={"Retry-After": f"{wait:.0f}"},
        )
    request.state.principal = principal
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller of this request, from `Authorization: Bearer <token>`; 401 otherwise."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("a bearer token is required")
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
PrincipalDep = Annotated[Principal, Depends(require_roles(*ANY_ROLE))]
