"""Every route x role x legal-entity scope, generated from the app's OpenAPI document: a
route that is not in the expected table below fails the first test, so a new route
cannot ship without saying who may call it.

The table is the policy as the README states it, written independently of the code:
reads need the object's legal entity in scope (the auditor reads all), changes need it
in scope and a role that may change it (the auditor changes nothing, integration admin
approves no money). The app runs on fakes that answer the authorization look-ups (an
object's legal entity) and stop everything after them (`Reached`), so a request that
passed authorization is told apart from one refused by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.app import create_app
from api.settings import ROLES, ApiSettings, TokenGrant
from contracts import search_attributes as sa

READ, WRITE, GLOBAL, ALL_SCOPE, PUBLIC, SIGNED = "read", "write", "global", "all-scope", "public", "signed"
ANY = frozenset(ROLES)
REPORTS = frozenset({"finance", "delivery_ops", "sales_ops", "auditor"})
RECON_READ = frozenset({"finance", "delivery_ops", "auditor", "integration_admin"})
JOBS = frozenset({"finance", "integration_admin"})
EXC_READ = frozenset({"integration_admin", "finance", "delivery_ops", "sales_ops", "auditor"})
E = "/v1/engagements/{opportunity_id}"

EXPECTED: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("POST", "/v1/engagements"): (frozenset({"sales_ops", "integration_admin"}), WRITE),
    ("GET", "/v1/engagements"): (ANY, READ),
    ("GET", E): (ANY, READ),
    ("POST", f"{E}/revalidate"): (frozenset({"sales_ops", "integration_admin"}), WRITE),
    ("POST", f"{E}/retry"): (frozenset({"integration_admin", "delivery_ops"}), WRITE),
    ("POST", f"{E}/cancel"): (frozenset({"sales_ops", "integration_admin"}), WRITE),
    ("POST", f"{E}/approvals/{{approval_id}}"): (frozenset({"finance", "delivery_ops", "sales_ops"}), WRITE),
    ("POST", f"{E}/amendments"): (frozenset({"delivery_ops", "sales_ops"}), WRITE),
    ("POST", f"{E}/credit-memos"): (frozenset({"finance", "delivery_ops", "sales_ops"}), WRITE),
    ("POST", f"{E}/periods/{{period}}/close"): (JOBS, WRITE),
    ("POST", f"{E}/delivery-complete"): (frozenset({"delivery_ops", "integration_admin"}), WRITE),
    ("POST", "/v1/period-close"): (JOBS, WRITE),
    ("GET", "/v1/period-close/{legal_entity}/{period}"): (ANY, READ),
    ("POST", "/v1/period-close/{legal_entity}/{period}/approve"): (frozenset({"finance"}), WRITE),
    ("POST", "/v1/period-close/{legal_entity}/{period}/cancel"): (JOBS, WRITE),
    ("GET", "/v1/period-close/{legal_entity}/{period}/engagements"): (ANY, READ),
    ("GET", "/v1/period-close/{legal_entity}/{period}/exceptions"): (ANY, READ),
    ("POST", "/v1/postings"): (frozenset({"finance", "integration_admin", "delivery_ops"}), WRITE),
    ("GET", "/v1/postings/{workflow_id}"): (ANY, READ),
    ("GET", "/v1/reports"): (REPORTS, GLOBAL),
    ("GET", "/v1/reports/{kpi}"): (REPORTS, READ),
    ("GET", "/v1/fx-rates"): (REPORTS, GLOBAL),
    ("GET", "/v1/lineage/{key}"): (REPORTS | {"integration_admin"}, READ),
    ("GET", "/v1/reconciliation"): (RECON_READ, READ),
    ("POST", "/v1/reconciliation/run"): (JOBS, WRITE),
    ("GET", "/v1/exceptions"): (EXC_READ, READ),
    ("GET", "/v1/operations"): (EXC_READ, READ),
    ("GET", "/v1/exceptions/{exception_id}"): (EXC_READ, READ),
    ("POST", "/v1/exceptions/{exception_id}/resolve"): (JOBS, WRITE),
    ("POST", "/v1/exceptions/{exception_id}/retry"): (JOBS, WRITE),
    ("GET", "/v1/audit"): (frozenset({"auditor", "finance"}), ALL_SCOPE),
    ("GET", "/v1/master-data/ownership"): (ANY, GLOBAL),
    ("POST", "/v1/master-data/customers/sync"): (JOBS, ALL_SCOPE),
    ("POST", "/v1/master-data/consultants/sync"): (JOBS, ALL_SCOPE),
    ("POST", "/v1/master-data/conflicts/{exception_id}/resolve"): (JOBS, WRITE),
    ("POST", "/codec/decode"): (ANY, ALL_SCOPE),
    ("POST", "/codec/encode"): (ANY - {"auditor"}, ALL_SCOPE),
    ("POST", "/codec/session"): (ANY, PUBLIC),
    ("POST", "/v1/webhooks/{source}"): (frozenset(), SIGNED),
}
MONEY_APPROVALS = [
    ("POST", f"{E}/approvals/{{approval_id}}"),
    ("POST", "/v1/period-close/{legal_entity}/{period}/approve"),
]

MINE, THEIRS = "UK01", "US01"
TODAY = dt.date.today()
PERIOD = f"{TODAY:%Y-%m}"


def opportunity(entity: str) -> str:
    return f"006{entity}00000000AAA"  # 18 characters, the entity readable inside


def exception_id(entity: str) -> int:
    return {MINE: 1, THEIRS: 2}[entity]


class Reached(Exception):
    """The request got past authorization into the handler's real work."""


@dataclass
class Description:
    typed_search_attributes: TypedSearchAttributes
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING
    raw_description: DescribeWorkflowExecutionResponse = field(default_factory=DescribeWorkflowExecutionResponse)

    async def memo_value(self, key: str, default: Any = None, **_: Any) -> Any:
        return default  # nothing published: the read goes on to the workflow


class FakeHandle:
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    async def describe(self, **_: Any) -> Description:
        entity = MINE if MINE in self.workflow_id else THEIRS
        return Description(TypedSearchAttributes([SearchAttributePair(sa.LEGAL_ENTITY, entity)]))

    def __getattr__(self, name: str) -> Any:
        async def stop(*_: Any, **__: Any) -> Any:
            raise Reached(name)

        return stop


class FakeTemporal:
    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(workflow_id)

    def list_workflows(self, query: str, **_: Any) -> AsyncIterator[Any]:
        raise Reached(f"list_workflows {query}")

    async def start_workflow(self, *_: Any, **__: Any) -> Any:
        raise Reached("start_workflow")


class FakeHub:
    async def lineage(self, key: str) -> dict[str, Any]:
        """The chain of the opportunity the key names: one record, of the entity inside the key."""
        row = {"system": "crm", "instance": "", "record_type": "opportunity", "record_key": key, "record_id": key,
               "external_id": None, "opportunity_id": key, "project_id": None,
               "legal_entity": MINE if MINE in key else THEIRS, "related": [], "source": "matrix",
               "workflow_id": None, "first_seen_at": None, "last_seen_at": None}  # fmt: skip
        return {"key": key, "matched": [row], "opportunities": [key], "records": [row], "truncated": False}

    async def get_exception(self, exception_id: int) -> dict[str, Any]:
        entity = MINE if exception_id == 1 else THEIRS
        return {"id": exception_id, "legal_entity": entity, "status": "open", "workflow_id": None}

    def __getattr__(self, name: str) -> Any:
        async def stop(*_: Any, **__: Any) -> Any:
            raise Reached(name)

        return stop


def token(role: str, scope: str) -> str:
    return f"{role}@{scope}"


def build_app() -> Any:
    grants = {
        token(role, scope): TokenGrant(
            subject=token(role, scope), roles=[role], entities=None if scope == "*" else [scope]
        )
        for role in ROLES
        for scope in ("*", MINE)
    }
    settings = ApiSettings(profile="dev", static_tokens=True, api_tokens=grants, salesforce=None)
    app = create_app(settings, temporal=FakeTemporal())  # type: ignore[arg-type]
    app.state.hub = FakeHub()

    @app.exception_handler(Reached)
    async def _reached(request: Request, exc: Reached) -> JSONResponse:
        return JSONResponse({"reached": str(exc)}, status_code=200)

    return app


APP = build_app()


def operations() -> list[tuple[str, str]]:
    return [(m.upper(), path) for path, ops in APP.openapi()["paths"].items() for m in ops]


def request_for(method: str, path: str, entity: str) -> dict[str, Any]:
    """A well-formed request aimed at an object of `entity` (so a 422 never hides a refusal)."""
    values = {
        "opportunity_id": opportunity(entity),
        "approval_id": "AM-1:0",
        "period": PERIOD,
        "legal_entity": entity,
        "workflow_id": f"posting-{entity}-{TODAY.isoformat()}",
        "kpi": "bookings",
        "exception_id": str(exception_id(entity)),
        "source": "salesforce",
        "key": opportunity(entity),
    }
    url = path.format(**{k: v for k, v in values.items() if "{" + k + "}" in path})
    params: dict[str, str] = {}
    if method == "GET" and path in (
        "/v1/engagements",
        "/v1/reports/{kpi}",
        "/v1/reconciliation",
        "/v1/exceptions",
        "/v1/operations",
    ):
        params["legal_entity"] = entity
    money = {"amount": "100.00", "currency": "GBP"}
    bodies: dict[str, Any] = {
        "/v1/engagements": {"opportunity_id": opportunity(entity)},
        f"{E}/cancel": {"reason": "authorization matrix"},
        f"{E}/approvals/{{approval_id}}": {"decision": "approve"},
        f"{E}/amendments": {
            "amendment": {
                "amendment_id": "AM-1",
                "effective_date": TODAY.isoformat(),
                "treatment": "prospective",
                "reason": "authorization matrix",
                "changes": [{"contract_line_id": "L1", "price": money}],
            }
        },
        f"{E}/credit-memos": {
            "credit_memo": {
                "credit_memo_id": "CM-1",
                "invoice_id": "INV-1",
                "memo_date": TODAY.isoformat(),
                "reason": "authorization matrix",
                "lines": [{"invoice_line_id": "INV-1:1", "amount": money}],
            }
        },
        "/v1/period-close": {"legal_entity": entity, "period": PERIOD},
        "/v1/period-close/{legal_entity}/{period}/approve": {"decision": "approve"},
        "/v1/period-close/{legal_entity}/{period}/cancel": {"reason": "authorization matrix"},
        "/v1/postings": {"legal_entity": entity},
        "/v1/reconciliation/run": {"legal_entity": entity, "period": PERIOD},
        "/codec/decode": {"payloads": []},
        "/codec/encode": {"payloads": []},
        "/v1/webhooks/{source}": {"type": "ping"},
        "/v1/master-data/conflicts/{exception_id}/resolve": {"keep": "owner"},
    }
    request: dict[str, Any] = {"method": method, "url": url, "params": params}
    if method == "POST":
        request["json"] = bodies.get(path, {})
    return request


def expected_allowed(role: str, scope: str, entity: str, roles: frozenset[str], kind: str) -> bool:
    if role not in roles:
        return False
    scoped = scope != "*"
    if kind == WRITE:
        return not scoped or entity == scope
    if kind == READ:
        return role == "auditor" or not scoped or entity == scope
    if kind == ALL_SCOPE:
        return role == "auditor" or not scoped
    return True  # GLOBAL: reference data, not owned by an entity


def test_every_route_in_the_openapi_document_has_an_expected_policy() -> None:
    documented = set(operations())
    assert documented - set(EXPECTED) == set(), "new routes: say who may call them in EXPECTED"
    assert set(EXPECTED) - documented == set(), "routes gone: drop them from EXPECTED"


def test_the_auditor_changes_nothing_and_integration_admin_approves_no_money() -> None:
    for (method, path), (roles, kind) in EXPECTED.items():
        if kind == WRITE:
            assert "auditor" not in roles, (method, path)
    for route in MONEY_APPROVALS:
        assert "integration_admin" not in EXPECTED[route][0], route


CASES = [
    (method, path, role, scope, entity)
    for method, path in sorted(EXPECTED)
    if EXPECTED[(method, path)][1] in (READ, WRITE, GLOBAL, ALL_SCOPE)
    for role in sorted(ROLES)
    for scope in ("*", MINE)
    for entity in (MINE, THEIRS)
]


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://test") as client:
        yield client


@pytest.mark.parametrize(("method", "path", "role", "scope", "entity"), CASES)
async def test_route_role_scope(
    http: httpx.AsyncClient, method: str, path: str, role: str, scope: str, entity: str
) -> None:
    roles, kind = EXPECTED[(method, path)]
    request = request_for(method, path, entity)
    response = await http.request(**request, headers={"Authorization": f"Bearer {token(role, scope)}"})
    if expected_allowed(role, scope, entity, roles, kind):
        assert response.status_code not in (401, 403, 422), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, v in EXPECTED.items() if v[1] in (READ, WRITE, GLOBAL, ALL_SCOPE))
)
async def test_no_token_is_401(http: httpx.AsyncClient, method: str, path: str) -> None:
    response = await http.request(**request_for(method, path, MINE))
    assert response.status_code == 401


async def test_signed_and_public_routes_take_no_bearer_as_a_credential(http: httpx.AsyncClient) -> None:
    webhook = await http.request(
        **request_for("POST", "/v1/webhooks/{source}", MINE),
        headers={"Authorization": f"Bearer {token('finance', '*')}"},
    )
    assert webhook.status_code == 401  # only the signature opens it
    session = await http.post("/codec/session", json={"token": token("auditor", "*")})
    assert session.status_code == 204
    forged = await http.post("/codec/session", json={"token": "nobody"})
    assert forged.status_code == 401


async def test_a_scoped_list_without_an_entity_filter_shows_only_the_callers_entities(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/engagements", headers={"Authorization": f"Bearer {token('finance', MINE)}"})
    assert response.status_code == 200
    assert f"D2RLegalEntity IN ('{MINE}')" in response.json()["reached"]
    everything = await http.get("/v1/engagements", headers={"Authorization": f"Bearer {token('auditor', MINE)}"})
    assert "D2RLegalEntity" not in everything.json()["reached"]
