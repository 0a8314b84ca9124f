"""SuiteQL as the REST query service runs it (POST /services/rest/query/v1/suiteql), over
the Records Catalog tables of `catalog.py`, compiled to SQLite.

The subset: SELECT [col | alias.col | BUILTIN.DF(col) | COUNT(*) | *] [AS name] FROM table
[alias] [[INNER | LEFT [OUTER]] JOIN table [alias] ON cond]... [WHERE cond] [ORDER BY ...];
cond: AND / OR / NOT / ( ), col op literal-or-col, [NOT] IN (...), [NOT] LIKE, IS [NOT]
NULL, BETWEEN. A date literal is TO_DATE('2026-11-01', 'YYYY-MM-DD'); a bare string
compared with a date column is read in the account's date format, as Oracle does with
the session's format (so '2026-11-01' against M/D/YYYY is refused). Dates come back in
the account's format. What NetSuite refuses, with its wording (as seen from real
accounts): an unknown table ("Invalid search type: x."), an unknown column ("Search error
occurred: Unknown identifier 'x'. Available identifiers are: {t=transaction}.").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._query import BoolOp, Count, DateLit, Not, QueryError, Star
from . import stored
from .catalog import Table
from .dates import format_date, parse_date
from .suiteql_parser import Cmp, Col, Func, InList, IsNull, LikeCond, Query, ToDate, parse

PREFIX = "Invalid search query. Detailed unprocessed description follows. "


class SuiteQLError(Exception):
    """A query NetSuite refuses: `detail` is the o:errorDetails detail."""


@dataclass
class Ref:
    alias: str
    column: str
    kind: str
    display: bool = False

    @property
    def sql(self) -> str:
        return f'"{self.alias}"."{self.column}{"#df" if self.display else ""}"'


class Compiler:
    """One query against one catalog: resolves names, builds one CTE per table used
    (projecting only the columns used), and renders rows as NetSuite returns them."""

    def __init__(self, q: Query, tables: dict[str, Table], date_format: str, custom: dict[str, str] | None):
        self.q = q
        self.date_format = date_format
        self.custom = custom  # custom field id -> kind (from the SDF objects); None: any with a prefix
        self.sources: dict[str, Table] = {}
        for src in q.sources:
            table = tables.get(src.table.lower())
            if table is None:
                raise SuiteQLError(f"{PREFIX}Invalid search type: {src.table}.")
            self.sources[src.alias.lower()] = table
        self.used: dict[str, set[str]] = {a: set() for a in self.sources}
        self.params: list[Any] = []

    # ---- names --------------------------------------------------------------------
    def _unknown(self, name: str) -> SuiteQLError:
        available = ", ".join(f"{a}={t.name}" for a, t in self.sources.items())
        return SuiteQLError(
            f"{PREFIX}Search error occurred: Unknown identifier '{name}'. Available identifiers are: {{{available}}}."
        )

    def _kind(self, table: Table, column: str) -> str | None:
        if column in table.kinds:
            return table.kinds[column]
        prefix = next((p for p in table.custom_prefixes if column.startswith(p + "_")), None)
        if prefix is None:
            return None
        if self.custom is None:
            return "custom"
        known = self.custom.get(column)
        return known if known is not None and known_prefix(column) == prefix else None

    def ref(self, col: Col, display: bool = False) -> Ref:
        path = [p.lower() for p in col.path]
        written = ".".join(col.path)
        if len(path) == 2 and path[0] in self.sources:
            alias, column = path
            kind = self._kind(self.sources[alias], column)
            if kind is None:
                raise self._unknown(written)
        elif len(path) == 1:
            found = [(a, k) for a, t in self.sources.items() if (k := self._kind(t, path[0])) is not None]
            if not found:
                raise self._unknown(written)
            if len(found) > 1:
                raise SuiteQLError(f"{PREFIX}Search error occurred: column ambiguously defined: {written}.")
            alias, kind = found[0]
            column = path[0]
        else:
            raise self._unknown(written)
        if display and kind != "ref" and column not in ("status", "type"):
            display = False  # BUILTIN.DF of a plain value is the value
        self.used[alias].add(column + ("#df" if display else ""))
        return Ref(alias, column, kind, display)

    # ---- values -------------------------------------------------------------------
    def _value(self, kind: str, v: Any) -> Any:
        if isinstance(v, ToDate):
            try:
                return parse_date(v.text, v.fmt or self.date_format).isoformat()
            except ValueError:
                raise SuiteQLError(
                    f"{PREFIX}Search error occurred: TO_DATE('{v.text}', '{v.fmt or self.date_format}'): "
                    "the literal does not match the format string."
                ) from None
        if kind in ("date", "datetime"):
            if isinstance(v, DateLit):
                return str(v)
            if isinstance(v, str):
                try:  # Oracle reads a string compared with a date in the session's format
                    return parse_date(v, self.date_format).isoformat()
                except ValueError:
                    raise SuiteQLError(
                        f"{PREFIX}Search error occurred: '{v}' is not a valid date in the account's date "
                        f"format ({self.date_format}); use TO_DATE('{v}', '<format>')."
                    ) from None
            raise SuiteQLError(f"{PREFIX}Search error occurred: {v!r} cannot be compared with a date.")
        if isinstance(v, bool):
            return "T" if v else "F"
        if kind in ("id", "ref", "num") and isinstance(v, str):
            try:
                return int(v) if v.strip().lstrip("-").isdigit() else float(v)
            except ValueError:
                return v
        if kind == "str" and isinstance(v, int | float):
            return str(v)
        return v

    def cond(self, node: Any) -> str:
        if isinstance(node, BoolOp):
            return "(" + f" {node.op.upper()} ".join(self.cond(i) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.cond(node.item)})"
        if isinstance(node, IsNull):
            return f"({self.ref(node.left).sql} IS {'NOT ' if node.negated else ''}NULL)"
        if isinstance(node, Cmp):
            left = self.ref(node.left)
            if isinstance(node.right, Col):
                return f"({left.sql} {node.op} {self.ref(node.right).sql})"
            if node.right is None:  # SQL: a comparison with NULL is never true
                return "(1 = 0)"
            self.params.append(self._value(left.kind, node.right))
            return f"({left.sql} {'<>' if node.op == '!=' else node.op} ?)"
        if isinstance(node, InList):
            left = self.ref(node.left)
            values = [self._value(left.kind, v) for v in node.values if v is not None]
            if not values:
                return "(1 = 0)" if not node.negated else "(1 = 1)"
            self.params.extend(values)
            return f"({left.sql} {'NOT ' if node.negated else ''}IN ({','.join('?' * len(values))}))"
        if isinstance(node, LikeCond):
            left = self.ref(node.left)
            self.params.append(node.pattern)
            return f"({left.sql} {'NOT ' if node.negated else ''}LIKE ?)"
        raise SuiteQLError(f"{PREFIX}unsupported condition")

    # ---- SQL ----------------------------------------------------------------------
    def _cte(self, alias: str) -> str:
        table = self.sources[alias]
        columns = sorted(self.used[alias]) or [next(iter(table.kinds))]
        if table.name in stored.STORED:  # kept as a table (stored.py): project its columns
            have = set(stored.columns(table))
            exprs = [
                f'"{c}" AS "{c}"'
                if c in have
                else f'json_extract("custom",\'$.{c}\') AS "{c}"'
                if c not in table.kinds and not c.endswith("#df")
                else f'NULL AS "{c}"'
                for c in columns
            ]
            return f'"{alias}" AS (SELECT {", ".join(exprs)} FROM {stored.table_name(table.name)})'
        selects = []
        for b in table.branches:
            exprs = []
            for c in columns:
                if c.endswith("#df"):
                    base = c[:-3]
                    expr = b.display.get(base) or b.columns.get(base) or "NULL"
                elif c in b.columns:
                    expr = b.columns[c]
                elif c not in table.kinds and b.custom:  # a custom field, from the branch's JSON
                    expr = f"json_extract({b.custom},'$.{c}')"
                else:
                    expr = "NULL"
                exprs.append(f'{expr} AS "{c}"')
            selects.append(f"SELECT {', '.join(exprs)} FROM {b.source} WHERE {b.where}")
        return f'"{alias}" AS ({" UNION ALL ".join(selects)})'

    def compile(self) -> tuple[list[tuple[str, Ref | None]], str, str, list[Any]]:
        """(output columns, FROM...WHERE sql, ORDER BY sql, params)."""
        outputs: list[tuple[str, Ref | None]] = []
        n = 0
        for it in self.q.items:
            if isinstance(it, Star):
                for alias, table in self.sources.items():
                    outputs += [(c, self.ref(Col([alias, c]))) for c in table.kinds]
            elif isinstance(it, Count):
                if len(self.q.items) > 1:
                    raise SuiteQLError(f"{PREFIX}COUNT can't be combined with other columns here.")
                outputs.append(((it.alias or "count").lower(), None))
            elif isinstance(it, Func):
                n += 1
                outputs.append(((it.alias or f"expr{n}").lower(), self.ref(it.arg, display=True)))
            else:
                outputs.append(((it.alias or it.col.path[-1]).lower(), self.ref(it.col)))
        joins = []
        for i, src in enumerate(self.q.sources):
            name = f'"{src.alias.lower()}"'
            if i == 0:
                joins.append(f"FROM {name}")
            else:  # ON parameters are bound before WHERE ones, as the text reads
                on = self.cond(src.on)
                joins.append(f"{'LEFT JOIN' if src.kind == 'LEFT' else 'INNER JOIN'} {name} ON {on}")
        where = f" WHERE {self.cond(self.q.where)}" if self.q.where is not None else ""
        aliases = {name: ref for name, ref in outputs if ref is not None}
        order = []
        for ob in self.q.order:
            key = ".".join(ob.path).lower()
            ref = aliases[key] if len(ob.path) == 1 and key in aliases else self.ref(Col(ob.path))
            nulls = "" if ob.nulls_last is None else (" NULLS LAST" if ob.nulls_last else " NULLS FIRST")
            order.append(f"{ref.sql}{' DESC' if ob.desc else ''}{nulls}")
        ctes = "WITH " + ", ".join(self._cte(a) for a in self.sources)
        body = f"{ctes} SELECT {{cols}} {' '.join(joins)}{where}"
        return outputs, body, (" ORDER BY " + ", ".join(order)) if order else "", self.params

    def render(self, name: str, ref: Ref | None, v: Any) -> Any:
        if v is None or ref is None:
            return v
        if ref.display:
            return str(v)
        if ref.kind in ("id", "ref"):
            return str(int(v)) if isinstance(v, int | float) else str(v)
        if ref.kind in ("date", "datetime"):
            try:
                return format_date(str(v), self.date_format)
            except ValueError:
                return v
        if ref.kind == "num" and isinstance(v, float) and v.is_integer():
            return int(v)
        return v


def known_prefix(column: str) -> str:
    return column.split("_", 1)[0]


def run(
    conn: Any,
    text: str,
    tables: dict[str, Table],
    date_format: str,
    limit: int,
    offset: int,
    custom: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """(the page's items, totalResults)."""
    try:
        q = parse(text)
    except QueryError as e:
        raise SuiteQLError(f"{PREFIX}{e}") from None
    compiler = Compiler(q, tables, date_format, custom)
    outputs, body, order, params = compiler.compile()
    total = int(conn.execute(body.replace("{cols}", "COUNT(*)"), params).fetchone()[0])
    if len(outputs) == 1 and outputs[0][1] is None:  # COUNT(*)
        return [{"links": [], outputs[0][0]: total}], 1
    cols = ", ".join(ref.sql for _, ref in outputs if ref is not None)
    rows = conn.execute(body.replace("{cols}", cols) + order + " LIMIT ? OFFSET ?", [*params, limit, offset])
    items = []
    for row in rows.fetchall():
        item: dict[str, Any] = {"links": []}
        for (name, ref), v in zip(outputs, row, strict=True):
            value = compiler.render(name, ref, v)
            if value is not None:
                item[name] = value
        items.append(item)
    return items, total
