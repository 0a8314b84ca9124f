"""The SuiteQL subset the simulator understands, parsed to a small tree (the SOQL parser of
simulators/_query.py, extended with joins, table aliases, BUILTIN.DF, IS NULL, BETWEEN and
TO_DATE with a format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._query import BoolOp, Count, Order, QueryError, Star, Tok, _Parser, tokenize


@dataclass
class Col:
    path: list[str]


@dataclass
class Func:
    name: str  # upper case, e.g. BUILTIN.DF
    arg: Col
    alias: str | None = None


@dataclass
class Item:
    col: Col
    alias: str | None = None


@dataclass
class Cmp:
    left: Col
    op: str
    right: Any  # a literal or a Col


@dataclass
class InList:
    left: Col
    values: list[Any]
    negated: bool = False


@dataclass
class LikeCond:
    left: Col
    pattern: str
    negated: bool = False


@dataclass
class IsNull:
    left: Col
    negated: bool = False


@dataclass
class Source:
    table: str
    alias: str
    kind: str = "FROM"  # FROM | INNER | LEFT
    on: Any = None


@dataclass
class Query:
    items: list[Any]
    sources: list[Source]
    where: Any = None
    order: list[Order] = field(default_factory=list)


_JOIN_WORDS = {"inner", "left", "right", "full", "outer", "join", "on", "cross"}


class _SuiteQLParser(_Parser):
    def word(self, *words: str) -> bool:
        t = self.peek()
        return t is not None and t.kind in ("ident", "kw") and str(t.value).lower() in words

    def expect_word(self, w: str) -> None:
        if not self.word(w):
            t = self.peek()
            raise QueryError(f"expecting {w.upper()}, found {t.value if t else 'end of query'!r}")
        self.take()

    def punct(self, p: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "punct" and t.value == p

    def query(self) -> Query:
        self.expect_kw("select")
        items = [self.select_item()]
        while self.punct(","):
            self.take()
            items.append(self.select_item())
        self.expect_kw("from")
        sources = [self.source("FROM")]
        while self.word("inner", "left", "join"):
            kind = "INNER"
            if self.word("left"):
                self.take()
                kind = "LEFT"
                if self.word("outer"):
                    self.take()
            elif self.word("inner"):
                self.take()
            self.expect_word("join")
            src = self.source(kind)
            self.expect_word("on")
            src.on = self.expr_or()
            sources.append(src)
        q = Query(items, sources)
        if self.at_kw("where"):
            self.take()
            q.where = self.expr_or()
        if self.at_kw("order"):
            self.take()
            self.expect_kw("by")
            q.order.append(self.order_item())
            while self.punct(","):
                self.take()
                q.order.append(self.order_item())
        if self.peek() is not None:
            raise QueryError(f"unexpected token {self.peek().value!r}")  # type: ignore[union-attr]
        return q

    def source(self, kind: str) -> Source:
        t = self.take()
        if t.kind != "ident" or "." in str(t.value):
            raise QueryError(f"expecting a table name, found {t.value!r}")
        alias = str(t.value)
        nt = self.peek()
        if nt is not None and nt.kind == "ident" and str(nt.value).lower() not in _JOIN_WORDS:
            alias = str(self.take().value)
        return Source(str(t.value), alias, kind)

    def select_item(self) -> Any:
        if self.punct("*"):
            self.take()
            return Star()
        if self.at_kw("count"):
            self.take()
            self.expect_punct("(")
            while not self.punct(")"):
                self.take()
            self.expect_punct(")")
            return Count(self.alias())
        t = self.peek()
        if t is not None and t.kind == "ident" and self._is_call():
            name = str(self.take().value).upper()
            self.expect_punct("(")
            arg = Col(self.ident())
            self.expect_punct(")")
            if name != "BUILTIN.DF":
                raise QueryError(f"the function {name} is not supported here")
            return Func(name, arg, self.alias())
        return Item(Col(self.ident()), self.alias())

    def _is_call(self) -> bool:
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        return nxt is not None and nxt.kind == "punct" and nxt.value == "("

    def predicate(self) -> Any:
        left = Col(self.ident())
        if self.word("is"):
            self.take()
            negated = False
            if self.at_kw("not"):
                self.take()
                negated = True
            if not self.at_kw("null"):
                raise QueryError("expecting NULL after IS")
            self.take()
            return IsNull(left, negated)
        if self.word("between"):
            self.take()
            low = self.literal()
            self.expect_kw("and")
            return BoolOp("and", [Cmp(left, ">=", low), Cmp(left, "<=", self.literal())])
        negated = False
        if self.at_kw("not"):
            self.take()
            negated = True
        if self.at_kw("in"):
            self.take()
            self.expect_punct("(")
            values = [self.literal()]
            while self.punct(","):
                self.take()
                values.append(self.literal())
            self.expect_punct(")")
            return InList(left, values, negated)
        if self.at_kw("like"):
            self.take()
            t = self.take()
            if t.kind != "str":
                raise QueryError("LIKE needs a string pattern")
            return LikeCond(left, str(t.value), negated)
        if negated:
            raise QueryError("NOT must be followed by IN or LIKE here")
        t = self.take()
        if t.kind != "op":
            raise QueryError(f"unexpected token {t.value!r}, expecting an operator")
        op = "!=" if t.value == "<>" else str(t.value)
        nt = self.peek()
        if nt is not None and nt.kind == "ident" and str(nt.value).upper() != "TO_DATE":
            return Cmp(left, op, Col(self.ident()))
        return Cmp(left, op, self.literal())

    def literal(self) -> Any:
        t = self.peek()
        if t is not None and t.kind == "ident" and str(t.value).upper() == "TO_DATE":
            self.take()
            self.expect_punct("(")
            v = self.take()
            if v.kind != "str":
                raise QueryError("TO_DATE needs a string")
            fmt: str | None = None
            if self.punct(","):
                self.take()
                f = self.take()
                if f.kind != "str":
                    raise QueryError("the format of TO_DATE must be a string")
                fmt = str(f.value)
            self.expect_punct(")")
            return ToDate(str(v.value), fmt)
        return super().literal()


@dataclass
class ToDate:
    text: str
    fmt: str | None  # None: the account's date format


def parse(q: str) -> Query:
    if not q or not q.strip():
        raise QueryError("empty query")
    toks: list[Tok] = tokenize(q)
    return _SuiteQLParser(toks).query()
