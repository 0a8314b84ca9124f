"""A tiny /healthz for worker processes: Temporal workers open no port of their own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker


@asynccontextmanager
async def serve_health(port: int, client: Client, workers: list[Worker]) -> AsyncIterator[None]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        try:
            server_ok = await client.service_client.check_health()
        except Exception:
            server_ok = False
        running = all(w.is_running for w in workers)
        body = json.dumps(
            {"temporal": server_ok, "workers": running, "task_queues": [w.task_queue for w in workers]}
        ).encode()
        status = "200 OK" if server_ok and running else "503 Service Unavailable"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()
