"""A small SQL-ish parser shared by the SOQL (Salesforce) and SuiteQL (NetSuite) subsets.

Grammar (case-insensitive keywords):
  SELECT item[, item...] FROM name [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], ...]
         [LIMIT n] [OFFSET n]
  item := path | COUNT() | COUNT(*) | COUNT(path) | * ; optionally "AS alias" (SuiteQL)
  cond := cond OR cond | cond AND cond | NOT cond | ( cond ) | path op literal
        | path [NOT] IN (literal, ...) | path [NOT] LIKE 'pattern'
  op   := = | != | <> | < | > | <= | >=
  literal := 'string' | number | true | false | null | date | datetime
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class QueryError(Exception):
    pass


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\d])
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc",
    "desc", "nulls", "first", "last", "limit", "offset", "true", "false", "null", "count",
    "as",
}  # fmt: skip


@dataclass
class Tok:
    kind: str  # str num date datetime op punct ident kw
    value: Any


def tokenize(q: str) -> list[Tok]:
    pos = 0
    out: list[Tok] = []
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if m is None:
            raise QueryError(f"unexpected character at position {pos}: {q[pos : pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            continue
        if kind == "str":
            body = text[1:-1]
            body = re.sub(r"\\(.)", lambda mm: mm.group(1), body).replace("''", "'")
            out.append(Tok("str", body))
        elif kind == "num":
            out.append(Tok("num", float(text) if "." in text else int(text)))
        elif kind == "ident" and text.lower() in KEYWORDS:
            out.append(Tok("kw", text.lower()))
        else:
            out.append(Tok(kind, text))
    return out


@dataclass
class Field:
    path: list[str]
    alias: str | None = None


@dataclass
class Count:
    alias: str | None = None


@dataclass
class Star:
    pass


@dataclass
class SubSelect:
    """A child-relationship subquery: (SELECT ... FROM ChildRelationship ...)."""

    select: Select


@dataclass
class Cmp:
    path: list[str]
    op: str
    value: Any


@dataclass
class In:
    path: list[str]
    values: list[Any]
    negated: bool = False


@dataclass
class Like:
    path: list[str]
    pattern: str
    negated: bool = False


@dataclass
class BoolOp:
    op: str  # and / or
    items: list[Any]


@dataclass
class Not:
    item: Any


@dataclass
class Order:
    path: list[str]
    desc: bool = False
    nulls_last: bool | None = None


@dataclass
class Select:
    items: list[Any]
    table: str
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count(self) -> bool:
        return len(self.items) == 1 and isinstance(self.items[0], Count)


class DateLit(str):
    """A date or datetime literal (kept as the ISO string)."""


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise QueryError("unexpected end of query")
        self.i += 1
        return t

    def at_kw(self, *kws: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "kw" and t.value in kws

    def expect_kw(self, kw: str) -> None:
        t = self.take()
        if t.kind != "kw" or t.value != kw:
            raise QueryError(f"expecting {kw.upper()}, found {t.value!r}")

    def expect_punct(self, p: str) -> None:
        t = self.take()
        if t.kind != "punct" or t.value != p:
            raise QueryError(f"expecting '{p}', found {t.value!r}")

    def ident(self) -> list[str]:
        t = self.take()
        if t.kind != "ident":
            raise QueryError(f"expecting a field name, found {t.value!r}")
        return str(t.value).split(".")

    def parse(self, nested: bool = False) -> Select:
        self.expect_kw("select")
        items: list[Any] = [self.item()]
        while self.peek() is not None and self.peek().kind == "punct" and self.peek().value == ",":  # type: ignore[union-attr]
            self.take()
            items.append(self.item())
        self.expect_kw("from")
        t = self.take()
        if t.kind != "ident":
            raise QueryError(f"expecting an object name after FROM, found {t.value!r}")
        sel = Select(items, str(t.value))
        # optional table alias (SuiteQL): FROM transaction t -- not supported beyond ignoring
        nt = self.peek()
        if nt is not None and nt.kind == "ident":
            raise QueryError("table aliases are not supported")
        if self.at_kw("where"):
            self.take()
            sel.where = self.expr_or()
        if self.at_kw("order"):
            self.take()
            self.expect_kw("by")
            sel.order.append(self.order_item())
            while self.peek() is not None and self.peek().value == ",":  # type: ignore[union-attr]
                self.take()
                sel.order.append(self.order_item())
        while self.at_kw("limit", "offset"):
            kw = self.take().value
            n = self.take()
            if n.kind != "num" or not isinstance(n.value, int) or n.value < 0:
                raise QueryError(f"{kw.upper()} needs a non-negative integer")
            if kw == "limit":
                sel.limit = n.value
            else:
                sel.offset = n.value
        if self.peek() is not None and not nested:
            raise QueryError(f"unexpected token {self.peek().value!r}")  # type: ignore[union-attr]
        return sel

    def alias(self) -> str | None:
        if self.at_kw("as"):
            self.take()
            return str(self.take().value)
        t = self.peek()
        if t is not None and t.kind == "ident" and not self.at_kw("from"):
            self.take()
            return str(t.value)
        return None

    def item(self) -> Any:
        t = self.peek()
        if t is not None and t.kind == "punct" and t.value == "*":
            self.take()
            return Star()
        if t is not None and t.kind == "punct" and t.value == "(":
            self.take()
            sub = self.parse(nested=True)
            self.expect_punct(")")
            return SubSelect(sub)
        if self.at_kw("count"):
            self.take()
            self.expect_punct("(")
            nt = self.peek()
            if nt is not None and not (nt.kind == "punct" and nt.value == ")"):
                self.take()
            self.expect_punct(")")
            return Count(self.alias())
        path = self.ident()
        return Field(path, self.alias())

    def order_item(self) -> Order:
        o = Order(self.ident())
        if self.at_kw("asc", "desc"):
            o.desc = self.take().value == "desc"
        if self.at_kw("nulls"):
            self.take()
            w = self.take().value
            if w not in ("first", "last"):
                raise QueryError("expecting FIRST or LAST after NULLS")
            o.nulls_last = w == "last"
        return o

    def expr_or(self) -> Any:
        items = [self.expr_and()]
        while self.at_kw("or"):
            self.take()
            items.append(self.expr_and())
        return items[0] if len(items) == 1 else BoolOp("or", items)

    def expr_and(self) -> Any:
        items = [self.expr_not()]
        while self.at_kw("and"):
            self.take()
            items.append(self.expr_not())
        return items[0] if len(items) == 1 else BoolOp("and", items)

    def expr_not(self) -> Any:
        if self.at_kw("not"):
            self.take()
            return Not(self.expr_not())
        t = self.peek()
        if t is not None and t.kind == "punct" and t.value == "(":
            self.take()
            e = self.expr_or()
            self.expect_punct(")")
            return e
        return self.predicate()

    def literal(self) -> Any:
        t = self.take()
        if t.kind in ("str", "num"):
            return t.value
        if t.kind in ("date", "datetime"):
            return DateLit(t.value)
        if t.kind == "kw" and t.value in ("true", "false"):
            return t.value == "true"
        if t.kind == "kw" and t.value == "null":
            return None
        if t.kind == "ident" and str(t.value).upper() == "TO_DATE":
            # SuiteQL: TO_DATE('2026-11-01', 'YYYY-MM-DD') -> the ISO date (only that format)
            self.expect_punct("(")
            v = self.take()
            if v.kind != "str":
                raise QueryError("TO_DATE needs a string")
            nt = self.peek()
            if nt is not None and nt.kind == "punct" and nt.value == ",":
                self.take()
                fmt = self.take()
                if str(fmt.value).upper() != "YYYY-MM-DD":
                    raise QueryError("only TO_DATE(..., 'YYYY-MM-DD') is supported")
            self.expect_punct(")")
            return DateLit(str(v.value))
        raise QueryError(f"unexpected token {t.value!r}, expecting a literal")

    def predicate(self) -> Any:
        path = self.ident()
        negated = False
        if self.at_kw("not"):
            self.take()
            negated = True
        if self.at_kw("in"):
            self.take()
            self.expect_punct("(")
            vals = [self.literal()]
            while self.peek() is not None and self.peek().value == ",":  # type: ignore[union-attr]
                self.take()
                vals.append(self.literal())
            self.expect_punct(")")
            return In(path, vals, negated)
        if self.at_kw("like"):
            self.take()
            t = self.take()
            if t.kind != "str":
                raise QueryError("LIKE needs a string pattern")
            return Like(path, str(t.value), negated)
        if negated:
            raise QueryError("NOT must be followed by IN or LIKE here")
        t = self.take()
        if t.kind != "op":
            raise QueryError(f"unexpected token {t.value!r}, expecting an operator")
        return Cmp(path, "!=" if t.value == "<>" else str(t.value), self.literal())


def parse(q: str) -> Select:
    if not q or not q.strip():
        raise QueryError("empty query")
    return _Parser(tokenize(q)).parse()


def sql_literal_param(v: Any) -> Any:
    if isinstance(v, bool):
        return 1 if v else 0
    return v


def compile_where(node: Any, col: Any, params: list[Any], numeric_cast: bool = False) -> str:
    """Compile a WHERE tree to SQL. `col(path)` returns the SQL expression of a field."""
    if isinstance(node, BoolOp):
        joiner = " AND " if node.op == "and" else " OR "
        return "(" + joiner.join(compile_where(i, col, params, numeric_cast) for i in node.items) + ")"
    if isinstance(node, Not):
        return "(NOT " + compile_where(node.item, col, params, numeric_cast) + ")"
    if isinstance(node, Cmp):
        e = col(node.path)
        if node.value is None:
            if node.op == "=":
                return f"({e} IS NULL)"
            if node.op == "!=":
                return f"({e} IS NOT NULL)"
            raise QueryError("null can only be compared with = or !=")
        v = node.value
        if numeric_cast and isinstance(v, int | float) and not isinstance(v, bool):
            e = f"CAST({e} AS NUMERIC)"
        params.append(sql_literal_param(v))
        if node.op == "!=":
            return f"({e} IS NOT ?)"
        return f"({e} {node.op} ?)"
    if isinstance(node, In):
        e = col(node.path)
        nonnull = [v for v in node.values if v is not None]
        has_null = len(nonnull) != len(node.values)
        parts = []
        if nonnull:
            if numeric_cast and all(isinstance(v, int | float) and not isinstance(v, bool) for v in nonnull):
                e = f"CAST({e} AS NUMERIC)"
            params.extend(sql_literal_param(v) for v in nonnull)
            parts.append(f"{e} IN ({','.join('?' * len(nonnull))})")
        if has_null:
            parts.append(f"{e} IS NULL")
        inner = "(" + " OR ".join(parts) + ")"
        if node.negated:
            return f"(NOT {inner} OR {e} IS NULL)" if not has_null else f"(NOT {inner})"
        return inner
    if isinstance(node, Like):
        e = col(node.path)
        params.append(node.pattern)
        return f"({e} {'NOT ' if node.negated else ''}LIKE ?)"
    raise QueryError("unsupported condition")
