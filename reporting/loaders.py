"""Idempotent fact loading: COPY into a per-connection staging table, then one upsert.

The upsert derives the functional and reporting currency amounts from the FX table,
resolving each distinct (currency, functional currency, FX date) once, and rewrites a row
only when something changed, so loading the same batch twice writes nothing.

Rounding policy (docs/reporting.md): every fact is converted at its own dated rate and
rounded to the target currency's minor unit, half away from zero; a document's tax is its
converted total minus its converted net, so net + tax = total in every currency. Totals
are sums of rounded rows, so the rows of a report always add up to its total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import asyncpg

from reporting import models as m


class UnknownLegalEntityError(ValueError):
    """A fact names a legal entity the hub has no dimension row for (no functional currency)."""


class MissingFxRateError(ValueError):
    """No FX rate on or before the fact's FX date for a needed currency pair."""

    def __init__(self, message: str, pair: tuple[str, str] | None = None, on: str | None = None) -> None:
        super().__init__(message)
        self.pair = pair
        self.on = on


@dataclass(frozen=True)
class FactSpec:
    table: str
    model: type[m.BaseModel]
    business_date: str
    money: tuple[str, ...]
    # Converted as total - net (both rounded), so the converted document still adds up.
    balancing: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.model_fields)

    @property
    def staging(self) -> str:
        return f"stg_{self.table}"


FACTS: dict[str, FactSpec] = {
    s.table: s
    for s in (
        FactSpec("fact_booking", m.BookingFact, "booking_date", ("amount",)),
        FactSpec("fact_time", m.TimeFact, "work_date", ("bill_amount", "cost_amount")),
        FactSpec("fact_expense", m.ExpenseFact, "expense_date", ("amount",)),
        FactSpec("fact_billing_event", m.BillingEventFact, "event_date", ("amount",)),
        FactSpec(
            "fact_invoice",
            m.InvoiceFact,
            "invoice_date",
            ("net_amount", "tax_amount", "total_amount"),
            balancing="tax_amount",
        ),
        FactSpec(
            "fact_credit_memo",
            m.CreditMemoFact,
            "memo_date",
            ("net_amount", "tax_amount", "total_amount"),
            balancing="tax_amount",
        ),
        FactSpec("fact_payment", m.PaymentFact, "payment_date", ("amount",)),
        FactSpec("fact_revenue", m.RevenueFact, "revenue_date", ("amount",)),
        FactSpec("fact_cost", m.CostFact, "cost_date", ("amount",)),
    )
}

_KEY = ("source_system", "source_record_id")


def _upsert_sql(spec: FactSpec, dedupe: bool, fresh: bool = False) -> tuple[str, str]:
    """(UPDATE of changed rows, INSERT of new rows), both fed by the converted staging.

    `fresh`: no staged key can exist yet (see `_all_keys_new`), so the INSERT skips the
    per-row existence probe.
    """
    cols = [c for c in spec.columns if c != "fx_date"]
    derived = [
        "functional_currency",
        "reporting_currency",
        "fx_date",
        "fx_rate_functional",
        "fx_rate_reporting",
    ]
    for col in spec.money:
        derived += [f"functional_{col}", f"reporting_{col}"]
    all_cols = cols + derived
    updatable = [c for c in all_cols if c not in _KEY]
    # A fact changes when its source figures, its FX date or its currencies do — not because a
    # rate for its date arrived later: a loaded fact keeps the rate it was converted at, so a
    # past period's figures (and the engagement view, which converted at that same rate) stay.
    compared = [c for c in updatable if c not in derived] + ["functional_currency", "reporting_currency", "fx_date"]
    src = spec.staging
    if dedupe:  # the same record twice in one batch: keep one (the last copied)
        src = (
            f"(SELECT DISTINCT ON (source_system, source_record_id) * FROM {spec.staging}"
            " ORDER BY source_system, source_record_id, ctid DESC)"
        )
    fxd = f"coalesce(st.fx_date, st.{spec.business_date})"
    select_derived = ["le.functional_currency", "$1", fxd, "r.rf", "r.rr"]
    for col in spec.money:
        select_derived += [_converted(spec, col, "r.rf", "r.mf"), _converted(spec, col, "r.rr", "r.mr")]
    rates = f"""
WITH r AS MATERIALIZED (
    SELECT currency, fc, fxd, hub_fx_rate(currency, fc, fxd) AS rf,
           hub_fx_rate(currency, $1, fxd) AS rr,
           hub_minor_unit(fc) AS mf, hub_minor_unit($1) AS mr
      FROM (SELECT DISTINCT st.currency, le.functional_currency AS fc, {fxd} AS fxd
              FROM {spec.staging} st JOIN dim_legal_entity le USING (legal_entity)) d
), n AS (
    SELECT {", ".join("st." + c for c in cols)}, {
        ", ".join(f"{expr} AS {name}" for expr, name in zip(select_derived, derived, strict=True))
    }
      FROM {src} st JOIN dim_legal_entity le USING (legal_entity)
      JOIN r ON r.currency = st.currency AND r.fc = le.functional_currency AND r.fxd = {fxd}
)"""
    key_match = "t.source_system = n.source_system AND t.source_record_id = n.source_record_id"
    update = f"""{rates}
UPDATE {spec.table} AS t
   SET {", ".join(f"{c} = n.{c}" for c in updatable)}, updated_at = now()
  FROM n
 WHERE {key_match}
   AND ({", ".join("t." + c for c in compared)})
       IS DISTINCT FROM ({", ".join("n." + c for c in compared)})"""
    insert = f"""{rates}
INSERT INTO {spec.table} ({", ".join(all_cols)})
SELECT {", ".join("n." + c for c in all_cols)} FROM n"""
    if not fresh:
        insert += f"\n WHERE NOT EXISTS (SELECT 1 FROM {spec.table} t WHERE {key_match})"
    return update, insert


def _converted(spec: FactSpec, col: str, rate: str, minor_unit: str) -> str:
    """One converted amount, rounded per fact to the target currency's minor unit."""
    if col == spec.balancing:
        return f"round(st.total_amount * {rate}, {minor_unit}) - round(st.net_amount * {rate}, {minor_unit})"
    return f"round(st.{col} * {rate}, {minor_unit})"


def _all_keys_new_sql(spec: FactSpec) -> str:
    """True when no stored key falls within the staged keys' range, per source system.

    Every staged key lies between its source system's smallest and largest staged key
    (in the primary key's order), so if the primary key holds nothing in that range, no
    staged record exists yet: one index probe per source system instead of one per row.
    The usual bulk case (new records with increasing ids) takes this path; any overlap
    (a reload, a correction, interleaved ids) falls back to the per-row probe.
    """
    return f"""
SELECT NOT EXISTS (
    SELECT 1 FROM (SELECT source_system, min(source_record_id) AS lo,
                          max(source_record_id) AS hi
                     FROM {spec.staging} GROUP BY source_system) k
     WHERE EXISTS (SELECT 1 FROM {spec.table} t
                    WHERE t.source_system = k.source_system
                      AND t.source_record_id BETWEEN k.lo AND k.hi))"""


def _lock_key(table: str) -> int:
    return int.from_bytes(hashlib.sha256(f"d2r-load:{table}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class LoadResult:
    table: str
    received: int
    written: int  # inserted or changed rows; 0 when the batch was already loaded


async def load_facts(
    conn: asyncpg.Connection, spec: FactSpec, facts: Sequence[Any], reporting_currency: str
) -> LoadResult:
    """COPY `facts` (models of `spec.model`) into staging and upsert them, in one transaction."""
    if not facts:
        return LoadResult(spec.table, 0, 0)
    cols = spec.columns
    getter = attrgetter(*cols)
    records = [getter(f) for f in facts]
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {spec.staging} ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(c if c != 'fx_date' else 'fx_date' for c in cols)} "
            f"FROM {spec.table} WITH NO DATA"
        )
        # The staging table is never analysed (too slow for the gain); steer the planner
        # away from sort-merge joins against the tiny FX table instead.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        await conn.execute("SET LOCAL enable_mergejoin = off")
        await conn.copy_records_to_table(spec.staging, records=records, columns=cols)
        unknown = await conn.fetch(
            f"SELECT DISTINCT legal_entity FROM {spec.staging} st "
            "WHERE NOT EXISTS (SELECT 1 FROM dim_legal_entity le "
            "WHERE le.legal_entity = st.legal_entity)"
        )
        if unknown:
            names = sorted(r["legal_entity"] for r in unknown)
            raise UnknownLegalEntityError(f"unknown legal entities {names}: load the dimension")
        # Loads of one fact table are serialised, so the plain INSERT of new rows below
        # cannot race another loader (cheaper than INSERT ... ON CONFLICT at volume).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(spec.table))
        duplicates = len(records) > 1 and await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {spec.staging} GROUP BY source_system, source_record_id HAVING count(*) > 1)"
        )
        distinct_keys = (
            len(records)
            if not duplicates
            else await conn.fetchval(
                f"SELECT count(*) FROM (SELECT DISTINCT source_system, source_record_id FROM {spec.staging}) k"
            )
        )
        fresh = not duplicates and bool(await conn.fetchval(_all_keys_new_sql(spec)))
        try:
            written = await _apply(
                conn, _upsert_sql(spec, dedupe=bool(duplicates), fresh=fresh), reporting_currency, distinct_keys
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == "D2R01":
                parts = (getattr(exc, "detail", None) or "").split("|")
                pair = (parts[0], parts[1]) if len(parts) == 3 else None
                raise MissingFxRateError(str(exc), pair, parts[2] if pair else None) from exc
            raise
    return LoadResult(spec.table, len(records), written)


async def _apply(conn: asyncpg.Connection, statements: tuple[str, str], currency: str, distinct_keys: int) -> int:
    """INSERT the new rows first; UPDATE only when some staged records already existed."""
    update, insert = statements
    inserted = int((await conn.execute(insert, currency)).split()[-1])
    if inserted == distinct_keys:  # all new (the usual bulk case): nothing to compare
        return inserted
    return inserted + int((await conn.execute(update, currency)).split()[-1])


# ------------------------------------------------------------------ dimensions
@dataclass(frozen=True)
class DimSpec:
    table: str
    model: type[m.BaseModel]
    key: tuple[str, ...]
    # an existing row is only replaced when this holds (t: the stored row, EXCLUDED: the new)
    replace_when: str | None = None


DIMENSIONS: dict[type[m.BaseModel], DimSpec] = {
    s.model: s
    for s in (
        DimSpec("dim_legal_entity", m.LegalEntityDim, ("legal_entity",)),
        DimSpec("dim_customer", m.CustomerDim, ("customer_id",)),
        DimSpec("dim_project", m.ProjectDim, ("project_id",)),
        DimSpec("dim_consultant", m.ConsultantDim, ("consultant_id",)),
        DimSpec("dim_service_line", m.ServiceLineDim, ("service_line",)),
        DimSpec("dim_service_offering", m.ServiceOfferingDim, ("service_offering",)),
        DimSpec("dim_geography", m.GeographyDim, ("geography",)),
        # an ERP's rate replaces any; the reference data's only its own (it is the fallback)
        DimSpec(
            "fx_rate",
            m.FxRate,
            ("from_currency", "to_currency", "rate_date"),
            replace_when=(
                f"(EXCLUDED.source_system <> '{m.REFERENCE_RATES}' OR t.source_system = '{m.REFERENCE_RATES}')"
            ),
        ),
    )
}


async def upsert_dimension(conn: asyncpg.Connection, rows: Sequence[m.BaseModel]) -> int:
    """Upsert dimension rows (all of one model); unchanged rows are not rewritten."""
    if not rows:
        return 0
    spec = DIMENSIONS[type(rows[0])]
    cols = tuple(type(rows[0]).model_fields)
    rest = [c for c in cols if c not in spec.key]
    placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    touch = ", updated_at = now()" if spec.table in ("dim_customer", "dim_project", "dim_consultant") else ""
    touch += ", synced_at = now()" if spec.table == "fx_rate" else ""
    guard = f" AND {spec.replace_when}" if spec.replace_when else ""
    sql = (
        f"INSERT INTO {spec.table} AS t ({', '.join(cols)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
        + touch
        + f" WHERE ({', '.join('t.' + c for c in rest)}) IS DISTINCT FROM "
        f"({', '.join('EXCLUDED.' + c for c in rest)})" + guard
    )
    getter = attrgetter(*cols)
    await conn.executemany(sql, [getter(r) for r in rows])
    return len(rows)
