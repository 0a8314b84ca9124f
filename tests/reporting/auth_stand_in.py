"""Test-only stand-in with the interface of the lead's `api.auth`.

A bearer token is `<subject>:<role>[,<role>...]`; missing token -> 401, wrong role ->
403, both as problem+json. Only for tests; production uses api/auth.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]


def principal_from_token(token: str) -> Principal:
    subject, _, roles = token.partition(":")
    return Principal(subject=subject, roles=frozenset(r for r in roles.split(",") if r))


def require_roles(*roles: str) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        principal = principal_from_token(header[7:])
        if not principal.roles & set(roles):
            raise HTTPException(403, f"needs one of the roles {sorted(roles)}")
        return principal

    return dependency
