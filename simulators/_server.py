"""A small HTTP/1.1 server for the simulators' ASGI apps (keep-alive, pipelining,
Content-Length and chunked request bodies, `Expect: 100-continue`).

uvicorn without httptools/uvloop (pure-Python h11) caps the simulators at about 1,300
requests/s on a small box; this server lets them reach the benchmark goals with the
stdlib only. It can also really drop a connection, which the "response lost" fault
uses (a response carrying the `x-sim-drop-connection` header is never sent).
"""

from __future__ import annotations

import asyncio
import signal
from collections import deque
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

DROP_HEADER = "x-sim-drop-connection"
MAX_HEAD = 64 * 1024
MAX_BODY = 100 * 1024 * 1024
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _Req:
    __slots__ = ("body", "headers", "keep_alive", "method", "target")

    def __init__(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class HttpProtocol(asyncio.Protocol):
    def __init__(self, app: Any, server_addr: tuple[str, int]) -> None:
        self.app = app
        self.server_addr = server_addr
        self.buf = bytearray()
        self.pending: deque[_Req] = deque()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.sent_continue = False
        self.client: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if peer else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except ValueError:
            self._error(400)
            return
        if self.pending and self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    def _error(self, status: int) -> None:
        if self.transport is not None and not self.closed:
            reason = _REASONS.get(status, "Error")
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            self.transport.close()
        self.closed = True

    def _parse(self) -> None:
        while not self.closed:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise ValueError("head too large")
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                raise ValueError("bad request line")
            method, target, version = parts
            headers: list[tuple[bytes, bytes]] = []
            clen = 0
            chunked = False
            conn = ""
            expect = False
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if not sep:
                    raise ValueError("bad header")
                k = k.strip().lower()
                v = v.strip()
                headers.append((k.encode("latin-1"), v.encode("latin-1")))
                if k == "content-length":
                    clen = int(v)
                    if clen < 0 or clen > MAX_BODY:
                        raise ValueError("bad content-length")
                elif k == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif k == "connection":
                    conn = v.lower()
                elif k == "expect":
                    expect = v.lower() == "100-continue"
            start = end + 4
            if chunked:
                parsed = self._chunked(start)
                if parsed is None:
                    self._maybe_continue(expect)
                    return
                body, consumed = parsed
            else:
                if len(self.buf) - start < clen:
                    self._maybe_continue(expect)
                    return
                body = bytes(self.buf[start : start + clen])
                consumed = start + clen
            del self.buf[:consumed]
            self.sent_continue = False
            keep = conn != "close" and (version == "HTTP/1.1" or conn == "keep-alive")
            self.pending.append(_Req(method, target, headers, body, keep))

    def _maybe_continue(self, expect: bool) -> None:
        if expect and not self.sent_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.sent_continue = True

    def _chunked(self, pos: int) -> tuple[bytes, int] | None:
        out = bytearray()
        while True:
            nl = self.buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(bytes(self.buf[pos:nl]).split(b";")[0].strip() or b"0", 16)
            pos = nl + 2
            if size == 0:
                end = self.buf.find(b"\r\n\r\n", pos - 2)
                if end < 0:
                    return None
                return bytes(out), end + 4
            if len(self.buf) < pos + size + 2:
                return None
            out += self.buf[pos : pos + size]
            pos += size + 2
            if len(out) > MAX_BODY:
                raise ValueError("body too large")

    async def _run(self) -> None:
        try:
            while self.pending and not self.closed:
                req = self.pending.popleft()
                await self._handle(req)
                if not req.keep_alive and self.transport is not None:
                    self.transport.close()
                    self.closed = True
        finally:
            self.task = None
            if self.pending and not self.closed:
                self.task = asyncio.get_running_loop().create_task(self._run())

    async def _handle(self, req: _Req) -> None:
        path, _, qs = req.target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": req.method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": qs.encode("latin-1"),
            "root_path": "",
            "headers": req.headers,
            "client": self.client,
            "server": self.server_addr,
        }
        body_sent = False
        status = 500
        out_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": req.body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, Any]) -> None:
            nonlocal status, out_headers
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
                out_headers = list(msg.get("headers") or [])
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            status, out_headers, chunks = 500, [], [b"internal error"]
        if self.closed or self.transport is None:
            return
        if any(k.lower() == DROP_HEADER.encode() for k, _ in out_headers):
            self.transport.abort()
            self.closed = True
            return
        body = b"".join(chunks)
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}".encode()]
        has_len = False
        for k, v in out_headers:
            if k.lower() == b"content-length":
                has_len = True
            lines.append(k + b": " + v)
        if not has_len:
            lines.append(b"content-length: " + str(len(body)).encode())
        if not req.keep_alive:
            lines.append(b"connection: close")
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)


async def serve(app: Any, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; runs the app's startup/shutdown hooks."""
    loop = asyncio.get_running_loop()
    startup = getattr(app, "startup", None)
    if startup is not None:
        await startup()
    server = await loop.create_server(
        lambda: HttpProtocol(app, (host, port)), host, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        server.close()
        shutdown = getattr(app, "shutdown", None)
        if shutdown is not None:
            await shutdown()


def run(app: Any, host: str, port: int) -> None:
    asyncio.run(serve(app, host, port))
