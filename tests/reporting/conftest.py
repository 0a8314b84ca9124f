"""One embedded PostgreSQL per test session; a fresh migrated database per test.

The schema is migrated once into a template database; each test gets its own copy
(CREATE DATABASE ... TEMPLATE), which takes a few tens of milliseconds.
"""

from __future__ import annotations

import itertools
import pathlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from fastapi import FastAPI

from api import reports
from api.auth import Authenticator, Principal, TokenTable
from api.problems import install_problem_handlers
from api.settings import DEV_TOKENS
from reporting.embedded import start_embedded_postgres, stop_embedded_postgres
from reporting.hub import ReportingHub
from reporting.migrate import migrate_async

TEMPLATE = "d2r_template"
_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium (Debian package `chromium`)")


def make_app(hub: ReportingHub) -> FastAPI:
    """A bare app with the reporting router and the real auth (dev tokens)."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.authenticator = Authenticator(None, TokenTable({t: Principal(s, r) for t, (s, r) in DEV_TOKENS.items()}))
    app.state.hub = hub
    app.include_router(reports.router)
    return app


@pytest.fixture(scope="session")
def pg_root() -> Iterator[pathlib.Path]:
    # Not under pytest's basetemp: concurrent pytest runs on the same machine prune
    # each other's old basetemp directories, which would pull the data dir away.
    base = pathlib.Path(tempfile.mkdtemp(prefix="d2r-reporting-pg-"))
    pgdata = base / "pg"
    start_embedded_postgres(pgdata, database="postgres")
    yield pgdata
    stop_embedded_postgres(pgdata, discard=True)
    shutil.rmtree(base, ignore_errors=True)


def dsn_for(pgdata: pathlib.Path, database: str) -> str:
    return f"postgresql://postgres:@/{database}?host={pgdata}"


@pytest.fixture(scope="session")
async def template_dsn(pg_root: pathlib.Path) -> str:
    dsn = dsn_for(pg_root, TEMPLATE)
    await migrate_async(dsn)
    return dsn


@pytest.fixture
async def db_dsn(pg_root: pathlib.Path, template_dsn: str) -> AsyncIterator[str]:
    name = f"t{next(_counter)}"
    admin = await asyncpg.connect(dsn_for(pg_root, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    yield dsn_for(pg_root, name)


@pytest.fixture
async def hub(db_dsn: str) -> AsyncIterator[ReportingHub]:
    h = await ReportingHub.connect(db_dsn, max_size=4)
    yield h
    await h.close()
