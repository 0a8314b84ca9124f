"""Vendor-shaped responses on Starlette: compact JSON bodies, the exception that carries
a vendor error response out of a handler, and body readers that tolerate an empty body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json;charset=UTF-8"

__all__ = ["JSON_TYPE", "HTTPError", "Request", "Response", "dumps", "json_response", "read_form", "read_json"]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def json_response(
    obj: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = JSON_TYPE
) -> Response:
    return Response(dumps(obj), status, headers, media_type)


class HTTPError(Exception):
    """Raised by handlers; the endpoint answers with the vendor-shaped `response` it carries."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def read_json(req: Request) -> Any:
    """The JSON body, or None for an empty one (a JSONDecodeError becomes the vendor's 400)."""
    body = await req.body()
    return json.loads(body) if body else None


async def read_form(req: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the OAuth token endpoints)."""
    body = await req.body()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
