"""RFC 9457 problem details: every error the API returns has this one shape, and the
OpenAPI document says so: every operation lists each status it can answer, and every
error status as `application/problem+json` with the `Problem` schema."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    field: str = Field(description="where: dotted path into the body, or the parameter's name")
    message: str = Field(description="what is wrong and how to fix it")


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` names each field refused and why."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


DESCRIPTIONS = {
    400: "Malformed request (the body is not JSON, or a signed webhook is not an event)",
    401: "No valid bearer token (or webhook signature)",
    403: "The token lacks the role this action needs",
    404: "No such resource (or, for a start, no such opportunity in the CRM)",
    409: "Refused in the resource's current state",
    422: "Invalid input: each refused field and the reason",
    503: "A system d2r depends on (Temporal, the CRM, the reporting hub) cannot answer now; retry later",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: these error statuses, as problem+json (see `contract_openapi`)."""
    return {code: {"model": Problem, "description": DESCRIPTIONS[code]} for code in codes}


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers
        self.extra = extra


def problem_response(problem: ProblemError, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.openapi = lambda: contract_openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (unknown route, wrong method, a body that is not JSON).
        title = {400: "Bad request", 404: "Not Found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        problem = ProblemError(exc.status_code, title, str(exc.detail), headers=dict(exc.headers or {}))
        return problem_response(problem, request.url.path)

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        log.warning("Temporal refused %s %s: %s", request.method, request.url.path, exc)
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED):
            problem = ProblemError(503, "Temporal unavailable", str(exc), headers={"Retry-After": "10"})
        elif exc.status == RPCStatusCode.NOT_FOUND:
            problem = ProblemError(404, "Not Found", str(exc))
        else:
            problem = ProblemError(409, "Refused by Temporal", str(exc))
        return problem_response(problem, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in exc.errors()]
        return problem_response(
            ProblemError(422, "Invalid request", "the request body or parameters are invalid", errors=errors),
            request.url.path,
        )


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with every error status as problem+json, and the statuses every
    operation can answer (auth, validation, an unavailable dependency) on each one."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, sub in Problem.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items():
        components.setdefault(name, sub)
    components["Problem"].pop("$defs", None)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            common = [401, 403, 422, 503]  # every route in the document is authenticated
            if "requestBody" in operation:
                common.append(400)
            for code in common:
                responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
                    response["description"] = DESCRIPTIONS.get(int(code), response.get("description", "Error"))
    app.openapi_schema = schema
    return schema
