"""The key map and lineage: every cross-system id d2r creates or learns, and the chain of
records one id leads to.

Recording (`record_keys`) is an upsert on (system, instance, record type, record key):
what a later write adds (the ERP's internal id, a deal, a related record) fills in, what it
does not know never erases, and a row is rewritten only when something changed. Callers:
the engagement's hub write (activities/reporting.py), the posting pages' time facts
(activities/posting.py), the ERP document posting (activities/erp.py) and master-data
sync (ERP employees): each records the ids its own write already holds.

The key rule, so two writers meet on one row: `record_key` is d2r's external id where d2r
wrote the record (`d2r:customer:<account>`, `d2r:<workflow>:sales-order`, the invoice id,
the journal id ...), else the system's own id (an opportunity, an account, a PSA project).

Lineage (`lineage`): the records any id names (its key, its system id or its external id),
their deals (directly, or through the projects they relate to), then every record of those
deals and every record that relates to them — a bounded result, each with its system,
instance, ids and the workflow that wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

LINEAGE_LIMIT = 500  # records of one chain (a batch journal can reach many deals)

COLUMNS = (
    "system",
    "instance",
    "record_type",
    "record_key",
    "record_id",
    "external_id",
    "opportunity_id",
    "project_id",
    "legal_entity",
    "related",
    "source",
    "workflow_id",
)


class KeyRecord(BaseModel):
    """One record in one system, as a writer knows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(pattern=r"^(crm|psa|erp)$")
    instance: str = ""  # the configured instance name ("default", "d365", "kantata" ...)
    record_type: str  # opportunity, account, customer, project, sales_order, invoice, ...
    record_key: str = ""  # d2r's external id where d2r wrote it, else the system's id (default)
    record_id: str | None = None  # the system's own id, once known
    external_id: str | None = None  # d2r's deterministic id on the record
    opportunity_id: str | None = None
    project_id: str | None = None
    legal_entity: str | None = None
    related: tuple[str, ...] = ()  # keys or ids of records this one points at
    source: str  # which write recorded it, e.g. "reporting.record_engagement"
    workflow_id: str | None = None  # the workflow that wrote (or learned) the record

    @model_validator(mode="after")
    def _key(self) -> KeyRecord:
        if not self.record_key:
            key = self.external_id or self.record_id
            if not key:
                raise ValueError("a key record needs a record_key, an external_id or a record_id")
            object.__setattr__(self, "record_key", key)
        return self


def employee_key(
    *,
    instance: str,
    legal_entity: str,
    consultant_id: str,
    erp_employee_id: str | None,
    workflow_id: str | None,
    source: str = "master_data",
) -> KeyRecord:
    """The key of an ERP employee d2r created (or found) for a PSA consultant: keyed by the
    consultant id d2r writes on it as its external id, related to the consultant, in the
    ERP instance of the entity employing them. Record it with `ReportingHub.record_keys`."""
    return KeyRecord(
        system="erp",
        instance=instance,
        record_type="employee",
        external_id=consultant_id,
        record_id=erp_employee_id,
        legal_entity=legal_entity,
        related=(consultant_id,),
        source=source,
        workflow_id=workflow_id,
    )


_UPSERT = f"""
INSERT INTO hub_key_map AS t ({", ".join(COLUMNS)})
SELECT {", ".join("n.related::text[]" if c == "related" else "n." + c for c in COLUMNS)}
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
           AS n(system, instance, record_type, record_key, record_id, external_id, opportunity_id,
                project_id, legal_entity, related, source, workflow_id)
ON CONFLICT (system, instance, record_type, record_key) DO UPDATE SET
    record_id = coalesce(EXCLUDED.record_id, t.record_id),
    external_id = coalesce(EXCLUDED.external_id, t.external_id),
    opportunity_id = coalesce(EXCLUDED.opportunity_id, t.opportunity_id),
    project_id = coalesce(EXCLUDED.project_id, t.project_id),
    legal_entity = coalesce(EXCLUDED.legal_entity, t.legal_entity),
    related = ARRAY(SELECT DISTINCT r FROM unnest(t.related || EXCLUDED.related) AS r ORDER BY r),
    workflow_id = coalesce(t.workflow_id, EXCLUDED.workflow_id),
    source = t.source,
    last_seen_at = now()
WHERE (t.record_id, t.external_id, t.opportunity_id, t.project_id, t.legal_entity)
      IS DISTINCT FROM (coalesce(EXCLUDED.record_id, t.record_id), coalesce(EXCLUDED.external_id, t.external_id),
                        coalesce(EXCLUDED.opportunity_id, t.opportunity_id),
                        coalesce(EXCLUDED.project_id, t.project_id),
                        coalesce(EXCLUDED.legal_entity, t.legal_entity))
   OR NOT (EXCLUDED.related <@ t.related)
RETURNING 1"""


async def record_keys(conn: asyncpg.Connection | asyncpg.Pool, records: Sequence[KeyRecord]) -> int:
    """Upsert the records; returns the rows inserted or changed (0 when all were known)."""
    unique: dict[tuple[str, str, str, str], KeyRecord] = {}
    for r in records:  # one row per key in a statement (ON CONFLICT cannot touch a row twice)
        k = (r.system, r.instance, r.record_type, r.record_key)
        unique[k] = _merge(unique[k], r) if k in unique else r
    if not unique:
        return 0
    rows = list(unique.values())
    arrays: list[list[Any]] = [[getattr(r, c) for r in rows] for c in COLUMNS]
    related = COLUMNS.index("related")
    # text[] of text[] is not a thing: carry each record's related ids as one Postgres array literal
    arrays[related] = ["{" + ",".join(_quote(x) for x in r.related) + "}" for r in rows]
    written = await conn.fetch(_UPSERT, *arrays)
    return len(written)


def _merge(a: KeyRecord, b: KeyRecord) -> KeyRecord:
    update = {c: getattr(a, c) or getattr(b, c) for c in COLUMNS if c not in ("related", "source")}
    return a.model_copy(update={**update, "related": tuple(sorted({*a.related, *b.related}))})


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SELECT = (
    "SELECT system, instance, record_type, record_key, record_id, external_id, opportunity_id, "
    "project_id, legal_entity, related, source, workflow_id, first_seen_at, last_seen_at FROM hub_key_map"
)


async def lineage(conn: asyncpg.Connection | asyncpg.Pool, key: str, limit: int = LINEAGE_LIMIT) -> dict[str, Any]:
    """The chain an id leads to; `matched` is empty when the hub knows no record by it.

    1. the records the id names (its key, its system id or its external id);
    2. their deals: their own; for a shared record (no deal), those of the records it points
       at or that point at it (a customer reaches its deals through their account, a batch
       journal through the projects it carries);
    3. every record of those deals (by deal or project), and the shared records around them
       (no deal of their own: the accounts, the customer, the batch journals of the projects).
    """
    matched = [dict(r) for r in await conn.fetch(f"{_SELECT} WHERE {_NAMES}", [key])]
    if not matched:
        return {"key": key, "matched": [], "opportunities": [], "records": [], "truncated": False}
    ids = _ids(matched)
    pointers = sorted({x for m in matched for x in m["related"]})
    own = {m["opportunity_id"] for m in matched if m["opportunity_id"]}
    # a record of a deal is that deal's; only a shared one (no deal) is looked at through its neighbours
    near = (
        []
        if own
        else await conn.fetch(
            "SELECT opportunity_id, project_id FROM hub_key_map "
            "WHERE (record_key = ANY($1::text[]) OR record_id = ANY($1::text[]) OR related && $2::text[]) "
            "AND (opportunity_id IS NOT NULL OR project_id IS NOT NULL)",
            pointers,
            sorted(set(ids) | set(pointers)),
        )
    )
    opportunities = sorted({r["opportunity_id"] for r in [*matched, *near] if r["opportunity_id"]})
    projects = {r["project_id"] for r in [*matched, *near] if r["project_id"]}
    deal = [
        dict(r)
        for r in await conn.fetch(
            f"{_SELECT} WHERE opportunity_id = ANY($1::text[]) OR project_id = ANY($2::text[]) LIMIT $3",
            opportunities,
            sorted(projects),
            limit + 1,
        )
    ]
    projects |= {r["project_id"] for r in deal if r["project_id"]}
    around = sorted({x for r in deal for x in r["related"]} | set(pointers))
    shared = [
        dict(r)
        for r in await conn.fetch(
            f"{_SELECT} WHERE opportunity_id IS NULL AND (record_key = ANY($1::text[]) OR record_id = ANY($1::text[]) "
            "OR related && $2::text[]) LIMIT $3",
            around,
            sorted(set(around) | projects | set(_ids(deal)) | set(ids)),
            limit + 1,
        )
    ]
    by_key = {(r["system"], r["instance"], r["record_type"], r["record_key"]): r for r in [*matched, *deal, *shared]}
    rank = {t: n for n, t in enumerate(CHAIN_ORDER)}
    records = sorted(
        by_key.values(),
        key=lambda r: (rank.get(r["record_type"], len(rank)), r["first_seen_at"], r["record_key"]),
    )
    return {
        "key": key,
        "matched": matched,
        "opportunities": opportunities,
        "records": records[:limit],
        "truncated": len(records) > limit,
    }


_NAMES = "record_key = ANY($1::text[]) OR record_id = ANY($1::text[]) OR external_id = ANY($1::text[])"


def _ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every name the rows go by: their keys, system ids and external ids."""
    return sorted({v for r in rows for v in (r["record_key"], r["record_id"], r["external_id"]) if v})


# How a chain reads, deal to books: the order records are listed in.
CHAIN_ORDER = (
    "opportunity",
    "account",
    "customer",
    "project",
    "sales_order",
    "time_bill",
    "invoice",
    "credit_memo",
    "payment",
    "journal",
    "employee",
)
