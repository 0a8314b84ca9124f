"""Object-level authorization: every route's caller is checked against the legal entity of
the object it reads or changes, not only against a role.

Rules (README, Security and privacy):
- a principal's token names the legal entities in its scope (`*` = all);
- reads need the object's entity in scope, except for the auditor, who reads everything;
- changes need the entity in scope and a role that may change it; the auditor changes
  nothing and integration admin runs jobs but approves no money (the routes' role lists);
- an object whose legal entity is not known yet (an engagement still validating) is
  reachable only by all-entity principals.
A refusal is 403 problem+json naming the entity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api import door
from api.auth import ANY_ROLE, Principal, require_roles
from api.problems import ProblemError
from contracts import search_attributes as sa
from contracts.ids import engagement_workflow_id

FORBIDDEN_SCOPE = "urn:d2r:problem:outside-your-legal-entities"

Dependency = Callable[[Request], Coroutine[Any, Any, Principal]]


def out_of_scope(principal: Principal, legal_entity: str | None) -> ProblemError:
    scope = ", ".join(sorted(principal.entities or ())) or "none"
    what = f"legal entity {legal_entity}" if legal_entity else "an object whose legal entity is not known yet"
    return ProblemError(403, "Forbidden", f"{what} is outside your legal entities ({scope})", type_=FORBIDDEN_SCOPE)


def authorize(principal: Principal, legal_entity: str | None, *, write: bool) -> None:
    """Raise 403 unless `principal` may read (or, with `write`, change) objects of `legal_entity`."""
    allowed = principal.acts_on(legal_entity) if write else principal.sees(legal_entity)
    if not allowed:
        raise out_of_scope(principal, legal_entity)


def entity_filter(principal: Principal, requested: str | None) -> str | None:
    """The legal-entity filter of a list or report: what was asked, inside the caller's
    scope; a scoped caller of one entity gets it by default, of several must name one."""
    if principal.entities is None or "auditor" in principal.roles:
        return requested
    if requested is not None:
        authorize(principal, requested, write=False)
        return requested
    if len(principal.entities) == 1:
        return next(iter(principal.entities))
    raise ProblemError(
        403,
        "Forbidden",
        f"name a legal_entity: yours are {', '.join(sorted(principal.entities)) or 'none'}",
        type_=FORBIDDEN_SCOPE,
    )


def visible_entities(principal: Principal) -> frozenset[str] | None:
    """The entities a list may show; None = no restriction."""
    if principal.entities is None or "auditor" in principal.roles:
        return None
    return principal.entities


async def engagement_entity(client: Client, opportunity_id: str) -> str | None:
    """The engagement's legal entity, from its search attribute (set once the deal is validated)."""
    try:
        desc = await client.get_workflow_handle(engagement_workflow_id(opportunity_id)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no engagement for opportunity {opportunity_id}") from error
        raise
    return desc.typed_search_attributes.get(sa.LEGAL_ENTITY)


async def authorize_start(request: Request, principal: Principal, opportunity_id: str) -> None:
    """Starting an engagement is a change in the deal's legal entity: the running engagement's,
    or, before there is one, the one the CRM's opportunity names."""
    if principal.entities is None:
        return
    try:
        entity = await engagement_entity(request.app.state.temporal, opportunity_id)
    except ProblemError as missing:
        if missing.status != 404:
            raise
        crm = getattr(request.app.state, "crm", None)
        entity = None
        if crm is not None:
            await door.check_opportunity(crm, opportunity_id)  # 404 / 503 as the door answers them
            entity = getattr(await crm.read_opportunity(opportunity_id), "legal_entity", None)
    authorize(principal, entity, write=True)


def engagement_access(*roles: str, write: bool) -> Dependency:
    """For routes under /v1/engagements/{opportunity_id}: role, then the engagement's entity."""
    role_check = require_roles(*roles)

    async def dependency(request: Request) -> Principal:
        principal = await role_check(request)
        if principal.entities is None or (not write and "auditor" in principal.roles):
            return principal  # nothing to look up: every entity is in scope
        entity = await engagement_entity(request.app.state.temporal, request.path_params["opportunity_id"])
        authorize(principal, entity, write=write)
        return principal

    return dependency


def path_entity_access(*roles: str, write: bool, param: str = "legal_entity") -> Dependency:
    """For routes whose path names the legal entity (or a workflow id that starts with it)."""
    role_check = require_roles(*roles)

    async def dependency(request: Request) -> Principal:
        principal = await role_check(request)
        authorize(principal, entity_in_path(request.path_params.get(param, "")), write=write)
        return principal

    return dependency


_POSTING_ID = re.compile(r"^posting-([A-Za-z0-9]+)-")


def entity_in_path(value: str) -> str | None:
    """`UK01` itself, or the entity of a business workflow id like `posting-UK01-2026-11-30`."""
    found = _POSTING_ID.match(value)
    return found.group(1) if found else (value or None)


EngagementReader = Annotated[Principal, Depends(engagement_access(*ANY_ROLE, write=False))]
EntityReader = Annotated[Principal, Depends(path_entity_access(*ANY_ROLE, write=False))]
