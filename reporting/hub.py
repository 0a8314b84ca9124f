"""ReportingHub: the asyncpg-pool front of the reporting database.

Loaders are idempotent (natural keys + change-detecting upserts); KPI queries read the
conformed facts; reconciliation compares PSA, ERP and hub totals per project and period
and turns every difference into an exception; the audit log is append-only (a trigger
refuses UPDATE, DELETE and TRUNCATE).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from reporting import keymap, kpis
from reporting import models as m
from reporting.loaders import FACTS, LoadResult, MissingFxRateError, load_facts, upsert_dimension
from reporting.operations import operations as operations_panel

EXCEPTION_COLUMNS = (
    "id, dedupe_key, kind, status, source, workflow_id, run_id, workflow_link, "
    "opportunity_id, customer_id, project_id, contract_id, legal_entity, period, "
    "error_type, error_message, detail, occurrences, first_seen_at, last_seen_at, "
    "resolved_at, resolved_by, resolution_note"
)

RECON_METRICS = (
    # metric, the sources always compared with the hub, the sources compared only when
    # their extract for the legal entity and period carries the metric at all
    ("hours", ("psa", "erp"), ()),
    # Time is valued at the timecard's bill rate, as posting values the hub's time facts.
    # NetSuite time bills carry no amount and posting's time journals carry cost, so the
    # ERP's extract leaves time_amount NULL and takes no part; an ERP extract that does
    # carry bill amounts is compared.
    ("time_amount", ("psa",), ("erp",)),
    ("invoice_total", ("erp",), ()),
    # What the CRM says was sold (closed won in the period, at the current contract value)
    # against the hub's booking facts; only once a sync has extracted the CRM's bookings.
    ("booking_total", (), ("crm",)),
)
STAGE_RETENTION = "2 days"  # staged totals of syncs that never committed are dropped after this
MISSING_RATE = "fx.missing_rate"  # the exception kind of a fact that waits for a rate


class ExceptionNotFoundError(LookupError):
    pass


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: json.dumps(v, default=str),
        decoder=json.loads,
        schema="pg_catalog",
    )


def _record(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row.items())


class ReportingHub:
    """One per process. `await ReportingHub.connect(dsn)`; `await hub.close()`."""

    def __init__(self, pool: asyncpg.Pool, reporting_currency: str) -> None:
        self.pool = pool
        self.reporting_currency = reporting_currency

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10) -> ReportingHub:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            # KPI aggregates over tens of thousands of engagement-months stay in memory
            server_settings={"work_mem": "32MB", "application_name": "d2r-reporting"},
        )
        assert pool is not None
        currency = await pool.fetchval("SELECT value FROM hub_setting WHERE key = 'reporting_currency'")
        return cls(pool, currency or "USD")

    async def close(self) -> None:
        await self.pool.close()

    async def set_reporting_currency(self, currency: str) -> None:
        """Changes the currency of facts loaded from now on (reload to restate history)."""
        await self.pool.execute("UPDATE hub_setting SET value = $1 WHERE key = 'reporting_currency'", currency)
        self.reporting_currency = currency

    # ----------------------------------------------------------------- dimensions
    async def upsert_dimensions(self, rows: Sequence[m.BaseModel]) -> int:
        """Upsert rows of one dimension model (LegalEntityDim, CustomerDim, FxRate...)."""
        async with self.pool.acquire() as conn:
            return await upsert_dimension(conn, rows)

    # ----------------------------------------------------------------- facts
    async def _load(self, table: str, facts: Sequence[Any]) -> LoadResult:
        try:
            async with self.pool.acquire() as conn:
                return await load_facts(conn, FACTS[table], facts, self.reporting_currency)
        except MissingFxRateError as exc:
            # Nothing is loaded: the caller retries; a person sees which rate is missing.
            await self._missing_rate(table, exc, facts)
            raise

    async def _missing_rate(self, table: str, exc: MissingFxRateError, facts: Sequence[Any]) -> None:
        base, quote = exc.pair or ("?", "?")
        first = facts[0]
        await self.record_exception(
            m.ExceptionRecord(
                dedupe_key=f"{MISSING_RATE}:{base}:{quote}",
                kind=MISSING_RATE,
                error_type="MissingFxRateError",
                error_message=f"no {base}/{quote} rate on or before {exc.on}: {table} facts wait for it "
                "(sync the ERP's currency rates or add one to the reference data)",
                source="reporting.loaders",
                legal_entity=getattr(first, "legal_entity", None),
                project_id=getattr(first, "project_id", None),
                detail={"from": base, "to": quote, "on": exc.on, "table": table, "facts": len(facts)},
            )
        )

    async def record_fx_rates(self, rates: Sequence[m.FxRate]) -> int:
        """Store dated rates, one per pair and day. Returns the rows inserted or changed; then resolves
        the missing-rate exceptions the stored rates now answer."""
        if not rates:
            return 0
        # The same source's corrections replace its rows; another ERP's only when its rate
        # differs (the last synced wins); the reference data never replaces an ERP's rate.
        replace = (
            "(t.source_system = EXCLUDED.source_system AND (t.rate, t.source_record_id) IS DISTINCT FROM "
            "(EXCLUDED.rate, EXCLUDED.source_record_id)) OR (EXCLUDED.source_system <> $7 AND "
            "(t.source_system = $7 OR t.rate <> EXCLUDED.rate))"
        )
        written = await self.pool.fetchval(
            "WITH w AS (INSERT INTO fx_rate AS t (from_currency, to_currency, rate_date, rate, source_system, "
            "source_record_id) SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::numeric[], "
            "$5::text[], $6::text[]) ON CONFLICT (from_currency, to_currency, rate_date) DO UPDATE SET "
            "rate = EXCLUDED.rate, source_system = EXCLUDED.source_system, "
            "source_record_id = EXCLUDED.source_record_id, synced_at = now() "
            f"WHERE {replace} RETURNING 1) SELECT count(*) FROM w",
            [r.from_currency for r in rates],
            [r.to_currency for r in rates],
            [r.rate_date for r in rates],
            [r.rate for r in rates],
            [r.source_system for r in rates],
            [r.source_record_id for r in rates],
            m.REFERENCE_RATES,
        )
        await self.resolve_answered_missing_rates()
        return int(written)

    async def chosen_fx_rates(self, lookups: Sequence[tuple[str, str, dt.date]]) -> list[dict[str, Any]]:
        """The rate the loaders would use for each (from, to, day), with its day, source and
        pivot, from the one rule (`hub_fx_rate_chosen`); a pair the hub has no rate for is left out."""
        if not lookups:
            return []
        rows = await self.pool.fetch(
            "SELECT l.f AS from_currency, l.t AS to_currency, l.d AS on_date, c.rate, c.rate_date, "
            "c.source_system, c.via FROM unnest($1::text[], $2::text[], $3::date[]) AS l(f, t, d) "
            "CROSS JOIN LATERAL hub_fx_rate_chosen(l.f, l.t, l.d) AS c WHERE c.rate IS NOT NULL",
            [f for f, _, _ in lookups],
            [t for _, t, _ in lookups],
            [d for _, _, d in lookups],
        )
        return [_record(r) for r in rows]

    async def newest_fx_rate_date(self, source_system: str) -> dt.date | None:
        value = await self.pool.fetchval("SELECT max(rate_date) FROM fx_rate WHERE source_system = $1", source_system)
        return value if isinstance(value, dt.date) else None

    async def resolve_answered_missing_rates(self) -> int:
        """Resolve the open `fx.missing_rate` exceptions whose pair now has a rate on their day."""
        rows = await self.pool.fetch(
            "SELECT id, detail FROM hub_exception WHERE kind = $1 AND status <> 'resolved'", MISSING_RATE
        )
        resolved = 0
        for row in rows:
            d = row["detail"] or {}
            try:
                on = dt.date.fromisoformat(str(d.get("on")))
                await self.pool.fetchval("SELECT hub_fx_rate($1, $2, $3)", d.get("from"), d.get("to"), on)
            except (ValueError, asyncpg.PostgresError):
                continue  # still missing (or not a date we can check)
            await self.resolve_exception(row["id"], resolved_by="fx-sync", note="the rate is in the hub now")
            resolved += 1
        return resolved

    async def record_booking(self, *facts: m.BookingFact) -> LoadResult:
        return await self._load("fact_booking", facts)

    async def record_time_facts(self, facts: Sequence[m.TimeFact]) -> LoadResult:
        return await self._load("fact_time", facts)

    async def record_time_billed(self, rows: Sequence[m.TimeBilled]) -> int:
        """What d2r billed time entries at; returns the rows inserted or changed (0 on a repeat)."""
        if not rows:
            return 0
        cols = tuple(m.TimeBilled.model_fields)
        ph = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        rest = [c for c in cols if c not in ("source_record_id", "billing_event_id")]
        written = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for r in rows:
                status = await conn.execute(
                    f"INSERT INTO billed_time AS t ({', '.join(cols)}) VALUES ({ph}) "
                    "ON CONFLICT (source_record_id, billing_event_id) DO UPDATE SET "
                    + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
                    + f", loaded_at = now() WHERE ({', '.join('t.' + c for c in rest)}) IS DISTINCT FROM "
                    f"({', '.join('EXCLUDED.' + c for c in rest)})",
                    *(getattr(r, c) for c in cols),
                )
                written += int(status.rsplit(" ", 1)[-1])
        return written

    async def record_expenses(self, facts: Sequence[m.ExpenseFact]) -> LoadResult:
        return await self._load("fact_expense", facts)

    async def record_billing_events(self, facts: Sequence[m.BillingEventFact]) -> LoadResult:
        return await self._load("fact_billing_event", facts)

    async def record_invoice(self, *facts: m.InvoiceFact) -> LoadResult:
        return await self._load("fact_invoice", facts)

    async def record_credit_memo(self, *facts: m.CreditMemoFact) -> LoadResult:
        return await self._load("fact_credit_memo", facts)

    async def record_payment(self, *facts: m.PaymentFact) -> LoadResult:
        return await self._load("fact_payment", facts)

    async def record_revenue(self, facts: Sequence[m.RevenueFact]) -> LoadResult:
        return await self._load("fact_revenue", facts)

    async def record_costs(self, facts: Sequence[m.CostFact]) -> LoadResult:
        return await self._load("fact_cost", facts)

    # ----------------------------------------------------------------- key map and lineage
    async def record_keys(self, records: Sequence[keymap.KeyRecord]) -> int:
        """Keep cross-system ids in the key map (reporting/keymap.py); returns rows changed."""
        return await keymap.record_keys(self.pool, records)

    async def lineage(self, key: str) -> dict[str, Any]:
        """Every record the id leads to (`matched` empty: the hub knows no such id)."""
        return await keymap.lineage(self.pool, key)

    # ----------------------------------------------------------------- KPIs
    async def fx_rates(
        self,
        from_currency: str | None = None,
        to_currency: str | None = None,
        on: dt.date | None = None,
        since: dt.date | None = None,
    ) -> list[dict[str, Any]]:
        """The stored dated rates, per pair newest first; `on`: only the rate in force on that
        day per pair (the one the loaders use: the latest on or before it)."""
        where = ["($1::text IS NULL OR from_currency = $1)", "($2::text IS NULL OR to_currency = $2)"]
        where.append("($3::date IS NULL OR rate_date <= $3)")
        where.append("($4::date IS NULL OR rate_date >= $4)")
        distinct = "DISTINCT ON (from_currency, to_currency) " if on else ""
        rows = await self.pool.fetch(
            f"SELECT {distinct}from_currency, to_currency, rate_date, rate, source_system, source_record_id, "
            "synced_at FROM fx_rate "
            f"WHERE {' AND '.join(where)} ORDER BY from_currency, to_currency, rate_date DESC LIMIT 5000",
            from_currency,
            to_currency,
            on,
            since,
        )
        return [_record(r) for r in rows]

    async def kpi(self, name: str, query: kpis.KpiQuery | None = None) -> kpis.KpiResult:
        q = query or kpis.KpiQuery()
        sql, params = kpis.build(name, q)
        rows = [_record(r) for r in await self.pool.fetch(sql, *params)]
        if name == "project_margin":
            rows = kpis.finish_margin(rows)
        as_of = q.balance_date() if name in ("backlog", "wip", "deferred_revenue", "ar_aging", "dso") else None
        return kpis.KpiResult(
            kpi=name,
            group_by=q.group_by,
            currency_basis=q.currency,
            unit=kpis.UNITS.get(name, "money"),
            rows=rows,
            as_of=as_of,
        )

    # ----------------------------------------------------------------- exceptions
    async def record_exception(self, exc: m.ExceptionRecord) -> int:
        """Open (or re-open, counting occurrences) the exception with this dedupe key."""
        fields = exc.model_dump()
        cols = list(fields)
        values = [fields[c] for c in cols]
        ph = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "dedupe_key")
        return int(
            await self.pool.fetchval(
                f"INSERT INTO hub_exception ({', '.join(cols)}) VALUES ({ph}) "
                f"ON CONFLICT (dedupe_key) DO UPDATE SET {update}, "
                "occurrences = hub_exception.occurrences + 1, last_seen_at = now(), "
                "status = 'open', resolved_at = NULL, resolved_by = NULL, resolution_note = NULL "
                "RETURNING id",
                *values,
            )
        )

    async def list_exceptions(
        self,
        *,
        status: str | None = "open",
        kind: str | None = None,
        legal_entity: str | None = None,
        project_id: str | None = None,
        opportunity_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        for col, val in (
            ("status", status),
            ("kind", kind),
            ("legal_entity", legal_entity),
            ("project_id", project_id),
            ("opportunity_id", opportunity_id),
        ):
            if val is not None:
                params.append(val)
                where.append(f"{col} = ${len(params)}")
        params += [limit, offset]
        sql = (
            f"SELECT {EXCEPTION_COLUMNS} FROM hub_exception"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY last_seen_at DESC, id DESC LIMIT ${len(params) - 1} "
            f"OFFSET ${len(params)}"
        )
        return [_record(r) for r in await self.pool.fetch(sql, *params)]

    async def get_exception(self, exception_id: int) -> dict[str, Any]:
        row = await self.pool.fetchrow(f"SELECT {EXCEPTION_COLUMNS} FROM hub_exception WHERE id = $1", exception_id)
        if row is None:
            raise ExceptionNotFoundError(exception_id)
        return _record(row)

    async def resolve_exception(
        self, exception_id: int, *, resolved_by: str, note: str | None = None
    ) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "UPDATE hub_exception SET status = 'resolved', resolved_at = now(), "
            "resolved_by = $2, resolution_note = $3 WHERE id = $1 "
            f"RETURNING {EXCEPTION_COLUMNS}",
            exception_id,
            resolved_by,
            note,
        )
        if row is None:
            raise ExceptionNotFoundError(exception_id)
        return _record(row)

    async def resolve_exception_by_key(
        self, dedupe_key: str, *, resolved_by: str, note: str | None = None
    ) -> int | None:
        """Resolve the open exception with this key (the workflow that raised it resumed)."""
        value = await self.pool.fetchval(
            "UPDATE hub_exception SET status = 'resolved', resolved_at = now(), "
            "resolved_by = $2, resolution_note = $3 WHERE dedupe_key = $1 AND status <> 'resolved' "
            "RETURNING id",
            dedupe_key,
            resolved_by,
            note,
        )
        return int(value) if value is not None else None

    async def operations(self, *, legal_entity: str | None, posting_delay_days: int, today: dt.date) -> dict[str, Any]:
        """The dashboard's operations panel (reporting/operations.py)."""
        return await operations_panel(
            self.pool, legal_entity=legal_entity, posting_delay_days=posting_delay_days, today=today
        )

    async def mark_exception_retrying_by_key(self, dedupe_key: str) -> int | None:
        """The workflow resumed the open exception with this key: `retrying` until its step
        passes (resolved) or fails again (open again, one more occurrence)."""
        value = await self.pool.fetchval(
            "UPDATE hub_exception SET status = 'retrying', last_seen_at = now() "
            "WHERE dedupe_key = $1 AND status <> 'resolved' RETURNING id",
            dedupe_key,
        )
        return int(value) if value is not None else None

    async def reopen_exception(self, exception_id: int, status: str = "open") -> None:
        """Undo a `retrying` mark whose retry could not be asked for (back to `status`)."""
        await self.pool.execute(
            "UPDATE hub_exception SET status = $2 WHERE id = $1 AND status = 'retrying'", exception_id, status
        )

    async def mark_exception_retrying(self, exception_id: int) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "UPDATE hub_exception SET status = 'retrying', last_seen_at = now() "
            f"WHERE id = $1 RETURNING {EXCEPTION_COLUMNS}",
            exception_id,
        )
        if row is None:
            raise ExceptionNotFoundError(exception_id)
        return _record(row)

    # ----------------------------------------------------------------- audit
    async def record_audit(
        self,
        actor: str,
        role: str | None,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> int:
        return int(
            await self.pool.fetchval(
                "INSERT INTO audit_log (actor, role, action, target, detail, source_ip) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                actor,
                role,
                action,
                target,
                detail or {},
                source_ip,
            )
        )

    async def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        for cond, val in (("actor = ${}", actor), ("action = ${}", action), ("at >= ${}", since)):
            if val is not None:
                params.append(val)
                where.append(cond.format(len(params)))
        params += [limit, offset]
        sql = (
            "SELECT id, at, actor, role, action, target, detail, source_ip FROM audit_log"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY id DESC LIMIT ${len(params) - 1} OFFSET ${len(params)}"
        )
        return [_record(r) for r in await self.pool.fetch(sql, *params)]

    # ----------------------------------------------------------------- reconciliation
    async def record_source_totals(self, totals: Sequence[m.SourceTotals]) -> int:
        """Replace the PSA/ERP totals for the given (source, legal entity, period, project)."""
        if not totals:
            return 0
        cols = tuple(m.SourceTotals.model_fields)
        ph = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        upd = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
        async with self.pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO recon_source_total ({', '.join(cols)}) VALUES ({ph}) "
                "ON CONFLICT (source_system, legal_entity, period, project_id) "
                f"DO UPDATE SET {upd}, loaded_at = now()",
                [tuple(getattr(t, c) for c in cols) for t in totals],
            )
        return len(totals)

    async def replace_source_totals(
        self,
        source_system: str,
        legal_entity: str,
        period: str,
        totals: Sequence[m.SourceTotals],
    ) -> int:
        """Make `totals` the complete extract of one source for one legal entity and period.

        Projects absent from `totals` no longer count for that source (an empty list
        clears the scope), unlike `record_source_totals`, which only upserts.
        """
        stray = [
            t for t in totals if (t.source_system, t.legal_entity, t.period) != (source_system, legal_entity, period)
        ]
        if stray:
            raise ValueError(f"{len(stray)} totals are outside {source_system}/{legal_entity}/{period}")
        cols = tuple(m.SourceTotals.model_fields)
        ph = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM recon_source_total WHERE source_system = $1 AND legal_entity = $2 AND period = $3",
                source_system,
                legal_entity,
                period,
            )
            await conn.executemany(
                f"INSERT INTO recon_source_total ({', '.join(cols)}) VALUES ({ph})",
                [tuple(getattr(t, c) for c in cols) for t in totals],
            )
        return len(totals)

    async def stage_source_totals(self, sync_key: str, part: str, totals: Sequence[m.SourceTotals]) -> int:
        """Stage one part (a page, an extract) of a sync run's totals; re-staging a part
        replaces it, so a retried page never counts twice. Parts add up per project when
        the run commits (`commit_staged_source_totals`)."""
        cols = tuple(m.SourceTotals.model_fields)
        ph = ", ".join(f"${i}" for i in range(3, len(cols) + 3))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM recon_source_stage WHERE sync_key = $1 AND part = $2", sync_key, part)
            await conn.executemany(
                f"INSERT INTO recon_source_stage (sync_key, part, {', '.join(cols)}) "
                f"VALUES ($1, $2, {ph}) ON CONFLICT (sync_key, source_system, part, project_id) "
                "DO UPDATE SET hours = EXCLUDED.hours, time_amount = EXCLUDED.time_amount, "
                "invoice_total = EXCLUDED.invoice_total, booking_total = EXCLUDED.booking_total, "
                "currency = EXCLUDED.currency, "
                "record_ids = EXCLUDED.record_ids, staged_at = now()",
                [(sync_key, part, *(getattr(t, c) for c in cols)) for t in totals],
            )
        return len(totals)

    async def commit_staged_source_totals(
        self,
        sync_key: str,
        legal_entity: str,
        period: str,
        sources: Sequence[str] = ("psa", "erp", "crm"),
        max_record_ids: int = 50,
    ) -> dict[str, int]:
        """Make a sync run's staged totals the complete extract of each source for the
        legal entity and period (replace semantics, like `replace_source_totals`), all
        sources in one transaction, and drop the run's stage. Returns projects per source.

        Parts add up per project; a metric stays NULL only where no part carried it.
        Staged rows of runs that never committed are dropped after STAGE_RETENTION."""
        written: dict[str, int] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for source in sources:
                await conn.execute(
                    "DELETE FROM recon_source_total WHERE source_system = $1 AND legal_entity = $2 AND period = $3",
                    source,
                    legal_entity,
                    period,
                )
                status = await conn.execute(
                    """
WITH s AS (SELECT * FROM recon_source_stage WHERE sync_key = $1 AND source_system = $2
              AND legal_entity = $3 AND period = $4),
     nums AS (SELECT project_id, sum(hours) AS hours, sum(time_amount) AS time_amount,
                     sum(invoice_total) AS invoice_total, sum(booking_total) AS booking_total,
                     min(currency) AS currency
                FROM s GROUP BY project_id),
     ids AS (SELECT project_id, array_agg(DISTINCT i ORDER BY i) AS ids
               FROM s, unnest(s.record_ids) AS i GROUP BY project_id)
INSERT INTO recon_source_total (source_system, legal_entity, project_id, period, hours,
                                time_amount, invoice_total, booking_total, currency, record_ids)
SELECT $2, $3, n.project_id, $4, n.hours, n.time_amount, n.invoice_total, n.booking_total, n.currency,
       coalesce((ids.ids)[1:$5], '{}')
  FROM nums n LEFT JOIN ids USING (project_id)""",
                    sync_key,
                    source,
                    legal_entity,
                    period,
                    max_record_ids,
                )
                written[source] = int(status.rsplit(" ", 1)[-1])
            await conn.execute(
                "DELETE FROM recon_source_stage WHERE sync_key = $1 OR staged_at < "
                f"now() - interval '{STAGE_RETENTION}'",
                sync_key,
            )
        return written

    async def reconcile(self, period: str, legal_entity: str) -> dict[str, Any]:
        """Compare PSA, ERP and hub per project for one period and legal entity.

        Hours are compared across all three, time amounts between the PSA and the hub (and
        the ERP when its extract carries them, see RECON_METRICS), invoice totals between
        the ERP and the hub. A project absent from a source counts as zero there. Every
        difference is stored with the records on each side and opened as an exception;
        exceptions of earlier runs that no longer differ are resolved.
        """
        start, end = kpis.month_start(period), kpis.month_end(period)
        sql = """
WITH hub_time AS (
    SELECT project_id, sum(hours) AS hours, sum(bill_amount) AS time_amount,
           min(currency) AS currency,
           (array_agg(source_record_id ORDER BY source_record_id))[1:50] AS ids
      FROM fact_time WHERE legal_entity = $1 AND work_date BETWEEN $2 AND $3
     GROUP BY project_id
), hub_inv AS (
    SELECT project_id, sum(total_amount) AS invoice_total, min(currency) AS currency,
           (array_agg(source_record_id ORDER BY source_record_id))[1:50] AS ids
      FROM fact_invoice
     WHERE legal_entity = $1 AND invoice_date BETWEEN $2 AND $3 AND project_id IS NOT NULL
     GROUP BY project_id
), hub_book AS (
    -- deals booked in the period, at their value to date (the original booking plus every
    -- change order since), as the CRM's current contract value of those deals
    SELECT project_id, sum(amount) AS booking_total, min(currency) AS currency,
           (array_agg(source_record_id ORDER BY source_record_id))[1:50] AS ids
      FROM fact_booking
     WHERE legal_entity = $1 AND project_id IN (
           SELECT project_id FROM fact_booking
            WHERE legal_entity = $1 AND amendment_id IS NULL AND booking_date BETWEEN $2 AND $3
              AND project_id IS NOT NULL)
     GROUP BY project_id
), psa AS (SELECT * FROM recon_source_total WHERE source_system = 'psa'
            AND legal_entity = $1 AND period = $4),
   erp AS (SELECT * FROM recon_source_total WHERE source_system = 'erp'
            AND legal_entity = $1 AND period = $4),
   crm AS (SELECT * FROM recon_source_total WHERE source_system = 'crm'
            AND legal_entity = $1 AND period = $4),
   projects AS (SELECT project_id FROM hub_time UNION SELECT project_id FROM hub_inv
                UNION SELECT project_id FROM psa UNION SELECT project_id FROM erp
                UNION SELECT project_id FROM hub_book UNION SELECT project_id FROM crm)
SELECT pr.project_id,
       coalesce(psa.hours, 0) AS psa_hours, coalesce(erp.hours, 0) AS erp_hours,
       coalesce(ht.hours, 0) AS hub_hours,
       coalesce(psa.time_amount, 0) AS psa_time_amount,
       coalesce(erp.time_amount, 0) AS erp_time_amount,
       coalesce(ht.time_amount, 0) AS hub_time_amount,
       NULL::numeric AS psa_invoice_total,
       coalesce(erp.invoice_total, 0) AS erp_invoice_total,
       coalesce(hi.invoice_total, 0) AS hub_invoice_total,
       coalesce(crm.booking_total, 0) AS crm_booking_total,
       coalesce(hb.booking_total, 0) AS hub_booking_total,
       coalesce(ht.currency, hi.currency, hb.currency, erp.currency, psa.currency, crm.currency) AS currency,
       coalesce(psa.record_ids, '{}') AS psa_ids, coalesce(erp.record_ids, '{}') AS erp_ids,
       coalesce(crm.record_ids, '{}') AS crm_ids,
       coalesce(ht.ids, '{}') AS hub_time_ids, coalesce(hi.ids, '{}') AS hub_invoice_ids,
       coalesce(hb.ids, '{}') AS hub_booking_ids
  FROM projects pr
  LEFT JOIN hub_time ht USING (project_id) LEFT JOIN hub_inv hi USING (project_id)
  LEFT JOIN hub_book hb USING (project_id)
  LEFT JOIN psa USING (project_id) LEFT JOIN erp USING (project_id) LEFT JOIN crm USING (project_id)
 ORDER BY pr.project_id"""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql, legal_entity, start, end, period)
            run_id = await conn.fetchval(
                "INSERT INTO recon_run (period, legal_entity, projects_checked) VALUES ($1, $2, $3) RETURNING id",
                period,
                legal_entity,
                len(rows),
            )
            reported = {
                (r["source_system"], metric)
                for r in await conn.fetch(
                    "SELECT source_system, bool_or(hours IS NOT NULL) AS hours, "
                    "bool_or(time_amount IS NOT NULL) AS time_amount, "
                    "bool_or(invoice_total IS NOT NULL) AS invoice_total, "
                    "bool_or(booking_total IS NOT NULL) AS booking_total FROM recon_source_total "
                    "WHERE legal_entity = $1 AND period = $2 GROUP BY source_system",
                    legal_entity,
                    period,
                )
                for metric, _, _ in RECON_METRICS
                if r[metric]
            }
            differences: list[dict[str, Any]] = []
            for row in rows:
                for metric, always, when_reported in RECON_METRICS:
                    sources = (*always, *(s for s in when_reported if (s, metric) in reported))
                    values = {src: row[f"{src}_{metric}"] for src in (*sources, "hub")}
                    if len(set(values.values())) <= 1:
                        continue
                    hub_ids = {"invoice_total": row["hub_invoice_ids"], "booking_total": row["hub_booking_ids"]}.get(
                        metric, row["hub_time_ids"]
                    )
                    detail = {
                        "values": {k: money_str(v) for k, v in values.items()},
                        "records": {
                            "psa": list(row["psa_ids"]),
                            "erp": list(row["erp_ids"]),
                            "crm": list(row["crm_ids"]),
                            "hub": list(hub_ids),
                        },
                    }
                    key = f"recon:{legal_entity}:{period}:{row['project_id']}:{metric}"
                    exc_id = await conn.fetchval(
                        "INSERT INTO hub_exception (dedupe_key, kind, source, project_id, "
                        "legal_entity, period, error_type, error_message, detail) "
                        "VALUES ($1, 'reconciliation', 'reporting.reconcile', $2, $3, $4, "
                        "'ReconciliationDifference', $5, $6) "
                        "ON CONFLICT (dedupe_key) DO UPDATE SET detail = EXCLUDED.detail, "
                        "error_message = EXCLUDED.error_message, last_seen_at = now(), "
                        "occurrences = hub_exception.occurrences + 1, "
                        "status = CASE WHEN hub_exception.status = 'resolved' THEN 'open' "
                        "ELSE hub_exception.status END, resolved_at = NULL, resolved_by = NULL "
                        "RETURNING id",
                        key,
                        row["project_id"],
                        legal_entity,
                        period,
                        f"{metric} differs for project {row['project_id']} in {period}: "
                        + ", ".join(f"{k}={v}" for k, v in values.items()),
                        detail,
                    )
                    await conn.execute(
                        "INSERT INTO recon_difference (run_id, project_id, metric, psa_value, "
                        "erp_value, crm_value, hub_value, currency, exception_id, detail) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        run_id,
                        row["project_id"],
                        metric,
                        values.get("psa"),
                        values.get("erp"),
                        values.get("crm"),
                        values["hub"],
                        row["currency"],
                        exc_id,
                        detail,
                    )
                    differences.append(
                        {
                            "project_id": row["project_id"],
                            "metric": metric,
                            "psa": values.get("psa"),
                            "erp": values.get("erp"),
                            "crm": values.get("crm"),
                            "hub": values["hub"],
                            "currency": row["currency"],
                            "exception_id": exc_id,
                            "records": detail["records"],
                        }
                    )
            await conn.execute("UPDATE recon_run SET differences = $2 WHERE id = $1", run_id, len(differences))
            keep = [f"recon:{legal_entity}:{period}:{d['project_id']}:{d['metric']}" for d in differences]
            await conn.execute(
                "UPDATE hub_exception SET status = 'resolved', resolved_at = now(), "
                "resolved_by = 'reconciliation', resolution_note = $4 "
                "WHERE kind = 'reconciliation' AND legal_entity = $1 AND period = $2 "
                "AND status <> 'resolved' AND NOT dedupe_key = ANY($3::text[])",
                legal_entity,
                period,
                keep,
                f"no difference in reconciliation run {run_id}",
            )
        return {
            "run_id": run_id,
            "period": period,
            "legal_entity": legal_entity,
            "projects_checked": len(rows),
            "differences": differences,
            "status": recon_status(len(rows), len(differences)),
        }

    async def latest_reconciliation(
        self, period: str | None = None, legal_entity: str | None = None
    ) -> list[dict[str, Any]]:
        """The latest run per (legal entity, period), optionally filtered."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT ON (legal_entity, period) id AS run_id, period, legal_entity, "
            "started_at, projects_checked, differences FROM recon_run "
            "WHERE ($1::text IS NULL OR period = $1) AND ($2::text IS NULL OR legal_entity = $2) "
            "ORDER BY legal_entity, period, id DESC",
            period,
            legal_entity,
        )
        return [_record(r) for r in rows]

    async def reconciliation_differences(self, run_id: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT project_id, metric, psa_value, erp_value, crm_value, hub_value, currency, "
            "exception_id, detail FROM recon_difference WHERE run_id = $1 "
            "ORDER BY project_id, metric",
            run_id,
        )
        return [_record(r) for r in rows]


def recon_status(projects_checked: int, differences: int) -> str:
    """What a reconciliation run may claim: "clean" only when it compared something."""
    if differences:
        return "differences"
    return "clean" if projects_checked else "nothing_to_reconcile"


def money_str(value: Any) -> Any:
    """JSON-safe rendering: Decimals as strings (never floats), dates ISO."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: money_str(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [money_str(v) for v in value]
    return value
