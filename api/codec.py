"""The codec server: Temporal's remote-codec protocol over d2r's key ring, so the Web UI and
`temporal workflow show --codec-endpoint` can read encrypted payloads for an authorised
caller.

`POST /codec/decode` and `/codec/encode` take and answer `{"payloads": [{"metadata":
{...base64...}, "data": "<base64>"}]}` (protobuf JSON of `Payloads`). The caller is a d2r
principal: a bearer token (the Web UI's "pass access token", the CLI's `--codec-auth`),
or the session cookie set by `POST /codec/session` (for a UI with "include cross-origin
credentials"). A payload does not say which legal entity it belongs to, so decoding needs
an all-entity scope or the auditor role; encoding (the UI starting or signalling a
workflow) is refused to the read-only auditor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import HTMLResponse
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from api.auth import SESSION_COOKIE, Principal, authenticate, principal_from_token
from api.deps import FORBIDDEN_SCOPE, visible_entities
from api.problems import ProblemError

router = APIRouter(prefix="/codec", tags=["codec"])

SESSION_SECONDS = 8 * 3600


def _codec(request: Request) -> PayloadCodec:
    codec: PayloadCodec | None = request.app.state.temporal_codec
    if codec is None:
        raise ProblemError(503, "Codec unavailable", "no codec key is configured (D2R_CODEC_KEY_FILE / D2R_CODEC_KEYS)")
    return codec


async def codec_caller(request: Request) -> Principal:
    """A bearer token, else the codec session cookie."""
    if request.headers.get("Authorization"):
        return await authenticate(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await principal_from_token(request, cookie)
    return await authenticate(request)  # answers the 401 with its challenge


def _every_entity(principal: Principal) -> None:
    """A payload does not say whose it is: only callers who may read every entity get it in clear."""
    if visible_entities(principal) is not None:
        raise ProblemError(
            403, "Forbidden", "decoding payloads needs an all-entity scope (or the auditor role)", type_=FORBIDDEN_SCOPE
        )


def _payloads(body: dict[str, Any]) -> Payloads:
    try:
        return ParseDict(body, Payloads())
    except ParseError as error:
        raise ProblemError(400, "Bad payloads", f"not a Temporal Payloads JSON document: {error}") from error


PAYLOADS_EXAMPLE = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjoxfQ=="}]}


@router.post("/decode", summary="Decrypt payloads for the Web UI or the CLI (Temporal codec-server protocol)")
async def decode(
    request: Request,
    principal: Annotated[Principal, Depends(codec_caller)],
    body: Annotated[dict[str, Any], Body(examples=[PAYLOADS_EXAMPLE])],
) -> dict[str, Any]:
    _every_entity(principal)
    payloads = _payloads(body)
    decoded = await _codec(request).decode(payloads.payloads)
    return MessageToDict(Payloads(payloads=decoded))


@router.post("/encode", summary="Encrypt payloads the Web UI or the CLI sends (Temporal codec-server protocol)")
async def encode(
    request: Request,
    principal: Annotated[Principal, Depends(codec_caller)],
    body: Annotated[dict[str, Any], Body(examples=[PAYLOADS_EXAMPLE])],
) -> dict[str, Any]:
    if principal.roles <= {"auditor"}:
        raise ProblemError(403, "Forbidden", "the auditor reads and never writes: encoding is refused")
    _every_entity(principal)
    payloads = _payloads(body)
    encoded = await _codec(request).encode(payloads.payloads)
    return MessageToDict(Payloads(payloads=encoded))


class SessionBody(BaseModel):
    token: str = Field(min_length=1, max_length=8192)


@router.post("/session", status_code=204, summary="Turn a bearer token into the codec session cookie")
async def open_session(body: SessionBody, request: Request, response: Response) -> Response:
    await principal_from_token(request, body.token)  # 401 for a bad token: no cookie for it
    response.status_code = 204
    response.set_cookie(
        SESSION_COOKIE,
        body.token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",  # the UI on another port of the same host is the same site
        secure=request.url.scheme == "https",
        path="/codec",
    )
    return response


@router.get("/session", response_class=HTMLResponse, include_in_schema=False)
async def session_page() -> HTMLResponse:
    """A one-field page: paste a token, get the cookie the Web UI's decode calls carry."""
    return HTMLResponse(_SESSION_PAGE, headers={"Cache-Control": "no-store"})


_SESSION_PAGE = """<!doctype html><meta charset="utf-8"><title>d2r codec session</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Decode payloads in the Temporal Web UI</h1>
<p>Paste a d2r token (<code>d2r token --role auditor</code>). Then, in the Web UI's codec
settings, tick <em>Include cross-origin credentials</em>.</p>
<form id="f"><textarea id="t" rows="6" cols="70"></textarea><br><button>Open session</button></form>
<p id="s"></p>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch("/codec/session", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token: document.getElementById("t").value.trim()})});
  document.getElementById("s").textContent = r.ok ? "session open for 8 hours" : "refused: " + r.status;
};
</script>"""
