"""Limits at the door: requests per principal (the `limits` library's moving window, in
memory: per API process) and the size of a request body (an ASGI middleware that counts
bytes as they arrive, so a lying or absent Content-Length does not get past it)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from limits import RateLimitItem, parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"


class PrincipalRateLimiter:
    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)  # e.g. "1200/minute"
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, subject: str) -> float | None:
        """None when allowed; else the seconds until the caller may try again."""
        if self._limiter.hit(self.item, "principal", subject):
            return None
        stats = self._limiter.get_window_stats(self.item, "principal", subject)
        return max(1.0, math.ceil(stats.reset_time - time.time()))


class BodySizeLimit:
    """413 problem+json for a body larger than `max_bytes` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        seen = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the app the client is gone: it stops reading and
                    # whatever it would still send is dropped below.
                    refused = True
                    if not started:
                        await self._too_large(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, tracked_send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        body: dict[str, Any] = {
            "type": "urn:d2r:problem:body-too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"the request body is larger than {self.max_bytes} bytes",
            "instance": scope.get("path"),
        }
        raw = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": raw})
