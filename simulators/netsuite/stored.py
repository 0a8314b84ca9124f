"""The transaction tables of SuiteQL kept as real, indexed SQLite tables, maintained by
triggers on `records`: a transaction's header, lines and GL lines are derived from its JSON
when it is written (by any path: the record API, a seed, a reset), not at every query, so
joins (`transaction` ⋈ `transactionline` ⋈ `transactionaccountingline`) use indexes
instead of re-deriving every line of every transaction for each page.

They are caches: dropped and rebuilt from `records` whenever the simulator starts, so a
schema change never leaves a stale one.
"""

from __future__ import annotations

import sqlite3

from .catalog import TRANSACTION_TYPES, Branch, Table

STORED = ("transaction", "transactionline", "transactionaccountingline")
_INDEXES = {
    "transaction": (("id",), ("type",), ("externalid",)),
    "transactionline": (("transaction", "id"), ("subsidiary",)),
    "transactionaccountingline": (("transaction", "transactionline"), ("account",)),
}
_TYPES = "(" + ",".join(f"'{t}'" for t in TRANSACTION_TYPES) + ")"


def table_name(name: str) -> str:
    return f"suiteql_{name}"


def columns(table: Table) -> list[str]:
    """Stored columns: every column, the display value of those with one, the custom JSON."""
    shown = sorted({c for b in table.branches for c in b.display})
    return [*table.kinds, *(f"{c}#df" for c in shown), "custom"]


def _quoted(names: list[str]) -> str:
    return ", ".join('"' + c + '"' for c in names)


def _insert(table: Table, branch: Branch, only_new: bool) -> str:
    exprs = []
    for c in columns(table):
        if c == "custom":
            exprs.append(branch.custom or "NULL")
        elif c.endswith("#df"):
            exprs.append(branch.display.get(c[:-3]) or "NULL")
        else:
            exprs.append(branch.columns.get(c, "NULL"))
    where = branch.where + (" AND r.seq = NEW.seq" if only_new else "")
    return (
        f"INSERT INTO {table_name(table.name)} ({_quoted([*columns(table), 'rseq'])}) "
        f"SELECT {', '.join(exprs)}, r.seq FROM {branch.source} WHERE {where}"
    )


def install(conn: sqlite3.Connection, tables: dict[str, Table]) -> None:
    for name in STORED:
        table, stored = tables[name], table_name(name)
        conn.execute(f"DROP TABLE IF EXISTS {stored}")
        for event in ("ai", "au", "ad"):
            conn.execute(f"DROP TRIGGER IF EXISTS {stored}_{event}")
        conn.execute(f"CREATE TABLE {stored} ({_quoted(columns(table))}, rseq INTEGER NOT NULL)")
        conn.execute(f"CREATE INDEX {stored}_rseq ON {stored}(rseq)")
        for n, cols in enumerate(_INDEXES[name]):
            conn.execute(f"CREATE INDEX {stored}_{n} ON {stored}({_quoted(list(cols))})")
        inserts = [_insert(table, b, only_new=True) for b in table.branches]
        body = "; ".join(inserts)
        conn.execute(f"CREATE TRIGGER {stored}_ai AFTER INSERT ON records WHEN NEW.type IN {_TYPES} BEGIN {body}; END")
        conn.execute(
            f"CREATE TRIGGER {stored}_au AFTER UPDATE ON records WHEN OLD.type IN {_TYPES} "
            f"BEGIN DELETE FROM {stored} WHERE rseq = OLD.seq; {body}; END"
        )
        conn.execute(
            f"CREATE TRIGGER {stored}_ad AFTER DELETE ON records WHEN OLD.type IN {_TYPES} "
            f"BEGIN DELETE FROM {stored} WHERE rseq = OLD.seq; END"
        )
        for b in table.branches:
            conn.execute(_insert(table, b, only_new=False))
